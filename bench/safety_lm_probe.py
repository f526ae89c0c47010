"""Does a small LM reading the dialogue rank HH-RLHF replies better than the shipped n-gram classifier?

Run:  .venv/bin/python bench/safety_lm_probe.py [--limit N] [--cache bench/out/safety_lm_probe.npz]

The offline default (hashed word n-grams) agrees with the human choice on about 62% of HH-RLHF harmless pairs
under grouped CV; the target is 70%. This bench measures the next step the issue names, a small LM, on the
same pairs and the same folds:

* **probe**: the embedded SmolLM2-135M-Instruct (frozen) reads each dialogue in its chat template followed by
  one reply; the reply's tokens' hidden states are mean-pooled at layers 6, 12, 18, 24 and 30; a pairwise
  logistic head (no intercept, L2, features scaled) is trained on (more harmful - less harmful) differences.
  The context is cut to its last ``--max-context`` tokens, the reply to its first ``--max-reply``.
* **folds**: the classifier's own grouped 5-fold split (an HH dialogue by its first human turn, the same stable
  hash), so no dialogue is on both sides.
* **honest row**: the layer set and the regularisation C are chosen by an inner CV inside each outer fold's
  training part (``nested``); the per-layer rows pick nothing but are shown at one C for reference.
* **baseline**: the shipped recipe under the same CV (``banditarena.safety.report.offline_cv``).

Printed: HH agreement with its 95% Wilson CI, an exact McNemar test of the nested probe against the n-gram
classifier on the same pairs, and texts per second of each (the probe's is its feature extraction, one text at
a time, 2 threads). Features are cached in ``--cache`` (keyed by the settings and the data file's hash), so a
rerun only refits the heads.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from banditarena.paths import data_dir
from banditarena.ratings.stats import mcnemar_test
from banditarena.safety.data import HHPair, fold_of, hh_pairs
from banditarena.safety.evaluate import margin_agreement
from banditarena.safety.features import HashedNgrams
from banditarena.types import file_sha256, stable_hash

LAYERS = (6, 12, 18, 24, 30)
MAX_CONTEXT, MAX_REPLY = 320, 160  # tokens of the dialogue (its end) and of the reply (its start)
CACHE = "bench/out/safety_lm_probe.npz"
CANDIDATES = [(C, L) for C in (1e-4, 3e-4, 1e-3) for L in ((18,), (24,), (18, 24), LAYERS)]


def chat_messages(context: str) -> list[dict[str, str]]:
    """An HH transcript ('\\n\\nHuman: ...\\n\\nAssistant: ...') as chat messages."""
    parts = re.split(r"\n\n(Human|Assistant):", "\n\n" + context.strip())
    return [{"role": "user" if role == "Human" else "assistant", "content": text.strip()}
            for role, text in zip(parts[1::2], parts[2::2])]


def load_smollm2() -> tuple[Any, Any, Any]:
    """(torch, tokenizer, causal LM) of the embedded SmolLM2-135M-Instruct, float32, quiet, on OMP_NUM_THREADS."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from banditarena.models.hub import smollm2_checkpoint

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    ck = smollm2_checkpoint()
    return torch, AutoTokenizer.from_pretrained(ck), AutoModelForCausalLM.from_pretrained(ck, dtype=torch.float32)


def dialogue_ids(tok: Any, context: str, reply: str, max_context: int, max_reply: int) -> tuple[list[int], int]:
    """Token ids of the dialogue in the chat template (its last ``max_context``) followed by the reply (its first
    ``max_reply``), and where the reply starts."""
    pre = tok.apply_chat_template(chat_messages(context), add_generation_prompt=True, tokenize=False)
    pre_ids = tok(pre, add_special_tokens=False)["input_ids"][-max_context:]
    rep_ids = tok(reply + "<|im_end|>", add_special_tokens=False)["input_ids"][:max_reply]
    return pre_ids + rep_ids, len(pre_ids)


class Probe:
    """Mean-pooled hidden states of a reply's tokens, read by SmolLM2-135M-Instruct after its dialogue."""

    def __init__(self, max_context: int, max_reply: int) -> None:
        self.torch, self.tok, model = load_smollm2()
        self.model = model.eval()
        self.max_context, self.max_reply = max_context, max_reply

    def features(self, context: str, reply: str) -> np.ndarray:
        ids, start = dialogue_ids(self.tok, context, reply, self.max_context, self.max_reply)
        with self.torch.no_grad():
            out = self.model(self.torch.tensor([ids]), output_hidden_states=True)
        return np.stack([out.hidden_states[layer][0, start:].mean(0).numpy() for layer in LAYERS])


def extract(pairs: list[HHPair], args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, float]:
    """(chosen features, rejected features, texts per second), from the cache when it matches."""
    key = stable_hash({"pairs": len(pairs), "ctx": args.max_context, "rep": args.max_reply, "layers": LAYERS,
                       "data": file_sha256(data_dir() / "hh_rlhf" / "harmless-base-test.jsonl.gz")}, 16)
    cache = Path(args.cache)
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == key:
                print(f"features from {cache}")
                return z["chosen"].astype(np.float32), z["rejected"].astype(np.float32), float(z["rate"])
    probe = Probe(args.max_context, args.max_reply)
    chosen, rejected = [], []
    t0 = time.perf_counter()
    for i, p in enumerate(pairs):
        chosen.append(probe.features(p.context, p.chosen).astype(np.float16))
        rejected.append(probe.features(p.context, p.rejected).astype(np.float16))
        if (i + 1) % 200 == 0:
            print(f"  {i + 1}/{len(pairs)} pairs, {time.perf_counter() - t0:.0f} s", flush=True)
    rate = 2 * len(pairs) / (time.perf_counter() - t0)
    c, r = np.array(chosen), np.array(rejected)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, key=np.array(key), chosen=c, rejected=r, rate=np.array(rate))
    return c.astype(np.float32), r.astype(np.float32), rate


def _fit_margin(Xc: Any, Xr: Any, train: np.ndarray, test: np.ndarray, C: float) -> np.ndarray:
    """Pairwise logistic head on (rejected - chosen): margins of the test pairs (> 0: agrees with people)."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    D = Xr[train] - Xc[train]
    y = np.r_[np.ones(D.shape[0]), np.zeros(D.shape[0])]
    if sparse.issparse(D):  # hashed n-grams: rows already L2-normalised
        head = LogisticRegression(C=C, fit_intercept=False, max_iter=3000).fit(sparse.vstack([D, -D]), y)
        return np.asarray(head.decision_function(Xr[test] - Xc[test]))
    scale = np.sqrt((D ** 2).mean(0)) + 1e-8  # dense LM states: each dimension to unit RMS
    head = LogisticRegression(C=C, fit_intercept=False, max_iter=3000).fit(np.vstack([D, -D]) / scale, y)
    return np.asarray(head.decision_function((Xr[test] - Xc[test]) / scale))


def _layers(F: np.ndarray, chosen: tuple[int, ...]) -> np.ndarray:
    return F[:, [LAYERS.index(layer) for layer in chosen]].reshape(len(F), -1)


def cv_margins(Fc: np.ndarray, Fr: np.ndarray, folds: np.ndarray, C: float, layers: tuple[int, ...]) -> np.ndarray:
    Xc, Xr = _layers(Fc, layers), _layers(Fr, layers)
    out = np.zeros(len(folds))
    for k in np.unique(folds):
        out[folds == k] = _fit_margin(Xc, Xr, folds != k, folds == k, C)
    return out


def nested_margins(Fc: np.ndarray, Fr: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Out-of-fold margins with (C, layers) chosen by an inner CV on each outer fold's training part."""
    out = np.zeros(len(folds))
    picks = []
    for k in np.unique(folds):
        outer_train = folds != k
        best: tuple[float, float, tuple[int, ...]] | None = None
        for C, layers in CANDIDATES:
            Xc, Xr = _layers(Fc, layers), _layers(Fr, layers)
            inner = np.zeros(len(folds))
            for j in np.unique(folds[outer_train]):
                inner[folds == j] = _fit_margin(Xc, Xr, outer_train & (folds != j), folds == j, C)
            a = margin_agreement(inner[outer_train])["agreement"]
            if best is None or a > best[0]:
                best = (a, C, layers)
        assert best is not None
        picks.append((best[1], best[2]))
        Xc, Xr = _layers(Fc, best[2]), _layers(Fr, best[2])
        out[folds == k] = _fit_margin(Xc, Xr, outer_train, folds == k, best[1])
    return out, picks


def learning_curve(Xc: Any, Xr: Any, folds: np.ndarray, groups: list[str], C: float, fractions: tuple[float, ...],
                   seeds: int) -> dict[float, float]:
    """Out-of-fold agreement when each fold's head trains on a seeded share of its training dialogues."""
    from banditarena.safety.data import fold_of as share_of

    out = {}
    for f in fractions:
        agree = []
        for seed in range(seeds):
            keep = np.array([share_of(g, 1000, seed + 1) < 1000 * f for g in groups])
            m = np.zeros(len(folds))
            for k in np.unique(folds):
                m[folds == k] = _fit_margin(Xc, Xr, (folds != k) & keep, folds == k, C)
            agree.append(margin_agreement(m)["agreement"])
        out[f] = float(np.mean(agree))
    return out


def agreement_cell(m: np.ndarray) -> str:
    """'67.6% (66-69)': agreement of margins (> 0 agrees with people) with its 95% Wilson CI."""
    a = margin_agreement(m)
    return f"{100 * a['agreement']:.1f}% ({100 * a['ci'][0]:.0f}-{100 * a['ci'][1]:.0f})"


def _row(label: str, m: np.ndarray, rate: str) -> str:
    return f"| {label} | {agreement_cell(m)} | {len(m)} | {rate} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="first N pairs only (0: all 2,307)")
    ap.add_argument("--max-context", type=int, default=MAX_CONTEXT)
    ap.add_argument("--max-reply", type=int, default=MAX_REPLY)
    ap.add_argument("--cache", default=CACHE)
    args = ap.parse_args()

    from banditarena.safety import default_scorer
    from banditarena.safety.train import TrainSettings, cross_validate, load_data

    pairs = hh_pairs()
    settings = TrainSettings()
    # the shipped recipe under its own CV; its response-head margins are per pair, in hh_pairs() order
    ng_margin = cross_validate(load_data(settings), settings).response_pair_margin
    if args.limit:
        pairs, ng_margin = pairs[:args.limit], ng_margin[:args.limit]
    folds = np.array([fold_of("hh:" + p.first_turn, settings.folds, settings.seed) for p in pairs])

    clf = default_scorer()
    texts = [t for p in pairs for t in (p.chosen, p.rejected)]
    prompts = [p.prompt for p in pairs for _ in (0, 1)]
    t0 = time.perf_counter()
    clf.score(texts, prompts=prompts)
    ng_rate = len(texts) / (time.perf_counter() - t0)

    Fc, Fr, lm_rate = extract(pairs, args)
    nested, picks = nested_margins(Fc, Fr, folds)

    print(f"\nHH-RLHF harmless pairs, grouped {settings.folds}-fold CV (seed {settings.seed}); "
          f"load {os.getloadavg()[0]:.2f} at the end")
    print("| scorer | agreement with people (95% CI) | pairs | texts/s |")
    print("|---|---|---|---|")
    print(_row("n-gram classifier (the shipped recipe, CV)", ng_margin, f"{ng_rate:,.0f}"))
    print(_row("SmolLM2 probe, nested (C and layers picked inside each fold)", nested, f"{lm_rate:.1f}"))
    for layers in ((6,), (12,), (18,), (24,), (30,), LAYERS):
        name = "+".join(str(x) for x in layers)
        print(_row(f"  probe, layer {name}, C=3e-4 (nothing picked)", cv_margins(Fc, Fr, folds, 3e-4, layers), ""))
    mc = mcnemar_test(list(nested > 0), list(ng_margin > 0))
    print(f"\nnested probe vs n-grams on the same pairs: {mc['a_only']} pairs only the probe gets right, "
          f"{mc['b_only']} only the n-grams; difference {100 * mc['diff']:+.1f} points, exact McNemar p = "
          f"{mc['p_value']:.2g} (ties count as wrong here)")
    fractions = (0.125, 0.25, 0.5, 1.0)
    groups = [p.first_turn for p in pairs]
    feats = HashedNgrams(settings.n_features, settings.ngram_max)
    enc_p = feats.encode([p.prompt for p in pairs])
    Nc = feats.response_block([], [], encoded=(enc_p, feats.encode([p.chosen for p in pairs])))
    Nr = feats.response_block([], [], encoded=(enc_p, feats.encode([p.rejected for p in pairs])))
    curves = {"SmolLM2 probe, layers 18+24, C=3e-4": learning_curve(
                  _layers(Fc, (18, 24)), _layers(Fr, (18, 24)), folds, groups, 3e-4, fractions, 3),
              "n-gram pairwise head (HH pairs only), C=1": learning_curve(Nc, Nr, folds, groups, 1.0, fractions, 3)}
    n_train = len(pairs) * (settings.folds - 1) / settings.folds
    print(f"\nlearning curve: agreement when each fold trains on a share of its ~{n_train:,.0f} training pairs "
          "(mean of 3 seeded draws)")
    print("| head | " + " | ".join(f"{f:g} (~{f * n_train:,.0f} pairs)" for f in fractions) + " |")
    print("|---|" + "---|" * len(fractions))
    for name, c in curves.items():
        print(f"| {name} | " + " | ".join(f"{100 * c[f]:.1f}%" for f in fractions) + " |")
    print("picked per fold (C, layers):", "; ".join(f"{C:g} {'+'.join(map(str, L))}" for C, L in picks))


if __name__ == "__main__":
    main()
