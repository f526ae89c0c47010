"""Option (b) for the learned judge, measured: TRL's RewardTrainer on SmolLM2-135M, on CPU, against the linear head.

The same real labels (AlpacaEval GPT-4 Turbo annotations) and the same held-out split for both:

* train: ``--train-pairs`` pairs drawn from 8 annotated models on 80% of the instructions (chosen = the answer
  GPT-4 Turbo preferred, rejected = the other; the reference/baseline answer is one of the two);
* test: ``--test-pairs`` pairs of the held-out model (``--held-out``) on the other 20% of the instructions.

Reported: agreement with GPT-4 Turbo on the test pairs (and the base rate of always picking the baseline),
training seconds per pair, and scoring answers/s on 2 CPU cores at ``--max-length`` tokens, next to the
linear head (the shipped judge's recipe, trained on the same 8 models and instructions, lexical + MiniLM
features) on the same test pairs.

    .venv/bin/python bench/judge_reward_model.py [--train-pairs 256] [--test-pairs 200] [--max-length 384]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from banditarena.judges.annotations import load_annotations, text_key
from banditarena.paths import data_dir


def split(held_out: str, seed: int) -> tuple[list, list]:
    ann = load_annotations(sorted((data_dir() / "alpaca_eval" / "annotations_gpt4_turbo").glob("*.json"))).annotations
    ann = [a for a in ann if a.output_1 != a.output_2 and a.preference != 1.5]
    groups = sorted({text_key(a.instruction) for a in ann})
    rng = np.random.default_rng(seed)
    test_groups = set(rng.permutation(groups)[: len(groups) // 5].tolist())
    train = [a for a in ann if a.generator_2 != held_out and text_key(a.instruction) not in test_groups]
    test = [a for a in ann if a.generator_2 == held_out and text_key(a.instruction) in test_groups]
    return train, test


def rm_run(train: list, test: list, args: argparse.Namespace) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from banditarena.models.hub import smollm2_checkpoint

    torch.manual_seed(args.seed)
    path = str(smollm2_checkpoint())
    tok = AutoTokenizer.from_pretrained(path)
    tok.pad_token = tok.pad_token or tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id

    def conv(a: object, answer: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": a.instruction}, {"role": "assistant", "content": answer}]

    rows = []
    for a in train:
        win, lose = (a.output_2, a.output_1) if a.preference > 1.5 else (a.output_1, a.output_2)
        rows.append({"chosen": conv(a, win), "rejected": conv(a, lose)})
    ds = Dataset.from_list(rows)
    cfg = RewardConfig(output_dir=str(Path(args.out) / "rm"), num_train_epochs=1, per_device_train_batch_size=4,
                       learning_rate=1e-5, max_length=args.max_length, use_cpu=True, report_to="none",
                       save_strategy="no", logging_steps=10, disable_tqdm=True, seed=args.seed)
    trainer = RewardTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok)
    used = len(trainer.train_dataset)  # TRL drops the pairs longer than max_length
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    model.eval()

    def score(texts: list[list[dict[str, str]]]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), 8):
                enc = tok.apply_chat_template(texts[i:i + 8], tokenize=False)
                b = tok(enc, return_tensors="pt", padding=True, truncation=True, max_length=args.max_length)
                out.append(model(**b).logits[:, 0].float().numpy())
        return np.concatenate(out)

    t0 = time.perf_counter()
    s_model = score([conv(a, a.output_2) for a in test])
    s_base = score([conv(a, a.output_1) for a in test])
    score_s = time.perf_counter() - t0
    truth = np.array([a.preference > 1.5 for a in test])
    return {"agreement": float(((s_model > s_base) == truth).mean()), "train_s_per_pair": train_s / max(1, used),
            "used": used, "answers_per_s": 2 * len(test) / score_s}


def linear_run(train: list, test: list) -> dict[str, float]:
    from banditarena.judges.learned import FeatureSpec, Featurizer, fit_head

    f = Featurizer(FeatureSpec(controlled=()))
    X = f.transform([a.instruction for a in train], [a.output_2 for a in train], [a.output_1 for a in train])
    head = fit_head(X, np.array([a.win_2 for a in train]), ["alpaca_eval"] * len(train))
    t0 = time.perf_counter()
    Xt = Featurizer(FeatureSpec(), f.embedder).transform([a.instruction for a in test], [a.output_2 for a in test],
                                                         [a.output_1 for a in test], control=True)
    p = head.proba(Xt)
    truth = np.array([a.preference > 1.5 for a in test])
    return {"agreement": float(((p > 0.5) == truth).mean()), "scoring_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-pairs", type=int, default=256)
    ap.add_argument("--test-pairs", type=int, default=200)
    ap.add_argument("--max-length", type=int, default=384)
    ap.add_argument("--held-out", default="claude-2.1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/out/judge-rm")
    args = ap.parse_args()
    train, test = split(args.held_out, args.seed)
    rng = np.random.default_rng(args.seed)
    train_small = [train[i] for i in rng.choice(len(train), min(args.train_pairs, len(train)), replace=False)]
    test = [test[i] for i in rng.choice(len(test), min(args.test_pairs, len(test)), replace=False)]
    base = float(np.mean([a.preference < 1.5 for a in test]))
    t0 = time.perf_counter()
    rm = rm_run(train_small, test, args)
    rm_s = time.perf_counter() - t0
    lin_small = linear_run(train_small, test)
    lin_all = linear_run(train, test)
    print(f"\nheld-out model {args.held_out}, {len(test)} test pairs on held-out instructions; "
          f"always-the-baseline agreement {base:.3f}\n")
    print(f"{'judge':<58}{'train pairs':>12}{'agreement':>10}{'train s/pair':>13}{'answers/s':>10}")
    print(f"{'TRL RewardTrainer, SmolLM2-135M, max_length ' + str(args.max_length):<58}"
          f"{str(rm['used']) + ' of ' + str(len(train_small)):>12}"
          f"{rm['agreement']:>10.3f}{rm['train_s_per_pair']:>13.2f}{rm['answers_per_s']:>10.1f}")
    print(f"{'linear head, lexical + MiniLM features (same pairs)':<58}{len(train_small):>12}{lin_small['agreement']:>10.3f}"
          f"{'':>13}{'':>10}")
    print(f"{'linear head, lexical + MiniLM features (all train pairs)':<58}{len(train):>12}{lin_all['agreement']:>10.3f}")
    print(f"\nRM total {rm_s:.0f} s (load, train, score)")


if __name__ == "__main__":
    main()
