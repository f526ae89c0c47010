"""One fold of HH-RLHF with SmolLM2-135M fine-tuned as a pairwise harm reward model (CPU, about 35 minutes).

Run:  .venv/bin/python bench/safety_lm_finetune.py [--fold 0] [--freeze 18]

``bench/safety_lm_probe.py`` trains only a head on frozen hidden states. This asks whether training the LM
too does better, on one outer fold of the same grouped 5-fold split (an HH dialogue by its first human turn):

* the reward of a reply is a linear head (initialised to zero) on the mean of the last layer's states over the
  reply's tokens, after the dialogue in the chat template (context cut to its last 256 tokens, reply to its
  first 128);
* embeddings and the first ``--freeze`` of the 30 layers stay frozen; the layers above, the final norm and the
  head train for one epoch on ``-log sigmoid(r(more harmful) - r(less harmful))``, ``--accumulate`` pairs a
  step (AdamW, learning rate 1e-5 for the layers and ``--head-lr`` for the head, weight decay 0.01, gradients
  clipped at 1, seed 0). One pair a step with a head rate of 1e-3 was tried first: its running training loss
  rose above log 2 (0.85-1.13 from step 300 on), so the defaults are 8 pairs a step and 1e-4;
* the fold's held-out pairs are then scored: agreement with people, with its Wilson CI, beside the frozen
  probe (nested, from ``bench/safety_lm_probe.py``'s cache when it is there) and the n-gram recipe on the
  same pairs.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import safety_lm_probe as probe  # the sibling bench: chat template, model loading, nested CV

from banditarena.safety.data import fold_of, hh_pairs

MAX_CONTEXT, MAX_REPLY = 256, 128


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--freeze", type=int, default=18, help="layers kept frozen (of 30)")
    ap.add_argument("--accumulate", type=int, default=8, help="pairs per optimiser step")
    ap.add_argument("--head-lr", type=float, default=1e-4)
    ap.add_argument("--cache", default=probe.CACHE, help="the probe bench's feature cache")
    args = ap.parse_args()

    from banditarena.safety.train import TrainSettings, cross_validate, load_data

    torch, tok, lm = probe.load_smollm2()
    torch.manual_seed(0)
    base = lm.model
    for p in base.parameters():
        p.requires_grad = False
    for layer in base.layers[args.freeze:]:
        for p in layer.parameters():
            p.requires_grad = True
    for p in base.norm.parameters():
        p.requires_grad = True
    head = torch.nn.Linear(base.config.hidden_size, 1, bias=False)
    torch.nn.init.zeros_(head.weight)

    def reward(context: str, reply: str) -> torch.Tensor:
        ids, start = probe.dialogue_ids(tok, context, reply, MAX_CONTEXT, MAX_REPLY)
        return head(base(torch.tensor([ids])).last_hidden_state[0, start:].mean(0))[0]

    settings = TrainSettings()
    pairs = hh_pairs()
    folds = np.array([fold_of("hh:" + p.first_turn, settings.folds, settings.seed) for p in pairs])
    train = [p for p, f in zip(pairs, folds) if f != args.fold]
    test = [p for p, f in zip(pairs, folds) if f == args.fold]
    order = np.random.default_rng(0).permutation(len(train))
    trainable = [p for p in base.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": trainable, "lr": 1e-5}, {"params": head.parameters(), "lr": args.head_lr}],
                            weight_decay=0.01)
    base.train()
    t0 = time.time()
    losses = []
    for step, i in enumerate(order):
        p = train[i]
        loss = -torch.nn.functional.logsigmoid(reward(p.context, p.rejected) - reward(p.context, p.chosen))
        (loss / args.accumulate).backward()
        if (step + 1) % args.accumulate == 0 or step + 1 == len(order):
            torch.nn.utils.clip_grad_norm_(trainable + list(head.parameters()), 1.0)
            opt.step()
            opt.zero_grad()
        losses.append(loss.item())
        if step % 100 == 0:
            print(f"step {step}/{len(train)} loss {np.mean(losses[-100:]):.3f} {time.time() - t0:.0f}s", flush=True)
    base.eval()
    with torch.no_grad():
        m = np.array([(reward(p.context, p.rejected) - reward(p.context, p.chosen)).item() for p in test])

    print(f"\nHH-RLHF fold {args.fold} of 5 ({len(test)} held-out pairs, {len(train)} trained on), "
          f"{time.time() - t0:.0f} s, load {os.getloadavg()[0]:.2f} at the end")
    print("| scorer | agreement with people (95% CI) |")
    print("|---|---|")
    print(f"| SmolLM2 fine-tuned (layers {args.freeze + 1}-30 + head, 1 epoch, {args.accumulate} pairs a step, "
          f"head lr {args.head_lr:g}) | {probe.agreement_cell(m)} |")
    ng = cross_validate(load_data(settings), settings).response_pair_margin[folds == args.fold]
    print(f"| n-gram classifier (the shipped recipe, CV) | {probe.agreement_cell(ng)} |")
    if Path(args.cache).exists():
        ns = argparse.Namespace(cache=args.cache, max_context=probe.MAX_CONTEXT, max_reply=probe.MAX_REPLY)
        Fc, Fr, _ = probe.extract(pairs, ns)
        nested, _ = probe.nested_margins(Fc, Fr, folds)
        print(f"| SmolLM2 probe, frozen, nested | {probe.agreement_cell(nested[folds == args.fold])} |")


if __name__ == "__main__":
    main()
