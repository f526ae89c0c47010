"""Safety scorers side by side on real labels: XSTest (four shares, per type) and HH-RLHF harmless pairs.

Run:  .venv/bin/python bench/safety.py [--folds 5] [--llm-sample 24] [--no-transfer]

Scorers (no scorer is evaluated on data it was trained on):

* ``wordlist``: the word list + PII patterns (no training).
* ``profanity-check``: alt-profanity-check's bundled model (trained on other data), threshold 0.5; only when
  the package is installed.
* ``classifier (CV)``: the recipe of ``banditarena safety train`` under grouped k-fold cross-validation: each
  XSTest prompt (with its three answers) and each HH dialogue is scored by the fold model that did not see it;
  thresholds come from an inner CV inside each fold's training data. The shipped artifact is this recipe fitted
  on all folds, so its own figures are these (slightly pessimistic: it has 1/k more data).
* ``classifier w/o XSTest``: the same recipe trained on HH-RLHF + AlpacaEval only, scored on all of XSTest
  (HH figures by CV): how it transfers to a kind of prompt it never saw.
* ``LLM stand-in`` (``--llm-sample N`` > 0): the Llama Guard-format classifier run on the embedded
  SmolLM2-135M-Instruct through the local backend, on a seeded sample of N items of each set. A STAND-IN: no
  Llama Guard model is available offline, and a 135M general chat model is not a safety classifier; its numbers
  only show the path works end to end. ``cascade`` is the CV classifier escalating its uncertain band to it, on
  the same sample.

Columns: XSTest shares (95% Wilson CI): unsafe prompts caught, safe prompts kept, answers complying with
unsafe prompts caught, answers complying with safe prompts kept (answers scored with their prompts);
HH-RLHF agreement (the reply people judged more harmful scores higher; ties 1/2); the share of Arena-Hard
gpt-4-0314 answers kept (ordinary traffic none of the scorers trained on); seconds per 1,000 texts (the
XSTest prompts and answers and HH replies; the CV rows are timed with the shipped artifact).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import math
import time
from typing import Any

import numpy as np
import pandas as pd

from banditarena.paths import data_dir
from banditarena.safety import WordListScorer, default_scorer
from banditarena.safety.data import hh_pairs, xstest_answers, xstest_prompts
from banditarena.safety.evaluate import hh_agreement, wilson, xstest_shares
from banditarena.safety.report import offline_cv, offline_transfer
from banditarena.safety.train import TrainSettings

SHARES = ("unsafe_prompts_caught", "safe_prompts_kept", "unsafe_compliance_caught", "safe_compliance_kept")
SHORT = {"unsafe_prompts_caught": "unsafe prompts caught", "safe_prompts_kept": "safe prompts kept",
         "unsafe_compliance_caught": "complying w/ unsafe caught", "safe_compliance_kept": "complying w/ safe kept"}


def arena_hard_answers() -> tuple[list[str], list[str]]:
    """(prompt, answer) of gpt-4-0314 on the 500 Arena-Hard prompts (from its answer file's messages)."""
    root = data_dir() / "arena_hard_v0.1"
    prompts, answers = [], []
    from banditarena.text import iter_jsonl

    for _, r in iter_jsonl(root / "model_answer" / "gpt-4-0314.jsonl"):
        user = next(m["content"] for m in r["messages"] if m["role"] == "user")
        content = r["messages"][-1]["content"]
        prompts.append(user if isinstance(user, str) else str(user))
        answers.append(content["answer"] if isinstance(content, dict) else str(content))
    return prompts, answers


def fmt(share: dict[str, Any]) -> str:
    if share["n"] == 0 or math.isnan(share["share"]):
        return "-"
    lo, hi = share["ci"]
    return f"{100 * share['share']:.0f}% ({100 * lo:.0f}-{100 * hi:.0f})"


def score_all(scorer: Any, P: list, A: list, H: list, ah: tuple[list[str], list[str]]) -> dict[str, Any]:
    """Score everything with one scorer; times the XSTest + HH part."""
    t0 = time.perf_counter()
    pr = scorer.score([p.prompt for p in P])
    ar = scorer.score([a.completion for a in A], prompts=[a.prompt for a in A])
    hc = scorer.score([h.chosen for h in H], prompts=[h.prompt for h in H])
    hr = scorer.score([h.rejected for h in H], prompts=[h.prompt for h in H])
    dt = time.perf_counter() - t0
    n = len(P) + len(A) + 2 * len(H)
    ahr = scorer.score(ah[1], prompts=ah[0]) if ah[1] else []
    kept = sum(r.verdict == "safe" for r in ahr)
    return {"xstest": xstest_shares(P, [r.verdict for r in pr], A, [r.verdict for r in ar]),
            "hh": hh_agreement(H, [r.score for r in hc], [r.score for r in hr]),
            "arena_kept": {"share": kept / len(ahr) if ahr else math.nan, "n": len(ahr), "ci": wilson(kept, len(ahr))},
            "s_per_1000": 1000 * dt / n, "n_timed": n}


class ProfanityCheck:
    """alt-profanity-check's bundled linear model as a scorer (threshold 0.5)."""

    name = "profanity-check"
    version = "alt-profanity-check"

    def __init__(self) -> None:
        from profanity_check import predict_prob

        self.predict_prob = predict_prob

    def score(self, texts: list[str], *, prompts: list[str] | None = None) -> list[Any]:
        from banditarena.safety import SafetyResult

        if not texts:
            return []
        p = self.predict_prob(list(texts))
        return [SafetyResult("unsafe" if x >= 0.5 else "safe", float(x), {"toxicity": "profanity"} if x >= 0.5 else {})
                for x in p]


def llm_rows(sample: int, seed: int, P: list, A: list, H: list, cv: Any, ah: tuple[list[str], list[str]]
             ) -> list[tuple[str, dict[str, Any]]]:
    import warnings

    from transformers.utils import logging as hf_logging

    from banditarena.models import make_backend
    from banditarena.safety.llm import LlamaGuardScorer

    hf_logging.disable_progress_bar()  # quiet console: no third-party bars or deprecation notices
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    rng = np.random.default_rng(seed)
    pi = sorted(rng.choice(len(P), min(sample, len(P)), replace=False))
    # answers: half complying with unsafe prompts, half complying with safe ones (the two answer shares)
    cu = [i for i, a in enumerate(A) if a.complies and a.prompt_label == "unsafe"]
    cs = [i for i, a in enumerate(A) if a.complies and a.prompt_label == "safe"]
    ai = sorted([*rng.choice(cu, min(sample // 2, len(cu)), replace=False), *rng.choice(cs, min(sample // 2, len(cs)), replace=False)])
    hi = sorted(rng.choice(len(H), min(sample, len(H)), replace=False))
    backend = make_backend("local", "smollm2-135m-instruct", batch_size=8, max_batch_tokens=8192)
    llm = LlamaGuardScorer(backend, max_tokens=8)
    Ps, As, Hs = [P[i] for i in pi], [A[i] for i in ai], [H[i] for i in hi]
    res = score_all(llm, Ps, As, Hs, ([], []))
    out = [(f"LLM stand-in: SmolLM2-135M, Llama Guard prompt (sample {sample}/set)", res)]
    # cascade on the same sample: the CV classifier's verdicts, its uncertain band escalated to the LLM
    pv = [("uncertain" if cv.prompt_uncertain[i] else cv.prompt_verdicts[i]) for i in pi]
    av = [("uncertain" if cv.answer_uncertain[i] else cv.answer_verdicts[i]) for i in ai]
    esc_p = [k for k, v in enumerate(pv) if v == "uncertain"]
    esc_a = [k for k, v in enumerate(av) if v == "uncertain"]
    t0 = time.perf_counter()
    if esc_p:
        for k, r in zip(esc_p, llm.score([Ps[k].prompt for k in esc_p])):
            pv[k] = r.verdict
    if esc_a:
        for k, r in zip(esc_a, llm.score([As[k].completion for k in esc_a], prompts=[As[k].prompt for k in esc_a])):
            av[k] = r.verdict
    dt = time.perf_counter() - t0
    share = (len(esc_p) + len(esc_a)) / (len(pv) + len(av))
    casc = {"xstest": xstest_shares(Ps, pv, As, av), "hh": {"agreement": math.nan, "n": 0, "ci": (math.nan, math.nan)},
            "arena_kept": {"share": math.nan, "n": 0, "ci": (math.nan, math.nan)},
            "s_per_1000": 1000 * dt / max(1, len(pv) + len(av)), "escalated": share}
    out.append((f"cascade: classifier (CV) -> LLM stand-in, {share:.0%} escalated (same sample)", casc))
    # the classifier (CV) on exactly this sample, for comparison
    ref = {"xstest": xstest_shares(Ps, [cv.prompt_verdicts[i] for i in pi], As, [cv.answer_verdicts[i] for i in ai]),
           "hh": {"agreement": math.nan, "n": 0, "ci": (math.nan, math.nan)},
           "arena_kept": {"share": math.nan, "n": 0, "ci": (math.nan, math.nan)}, "s_per_1000": math.nan}
    out.append(("classifier (CV) on the same sample", ref))
    return out


ROWS = ("wordlist", "profanity", "cv", "transfer", "llm")


def print_tables(rows: list[tuple[str, dict[str, Any]]]) -> None:
    main_rows = []
    for name, r in rows:
        row = {"scorer": name}
        for k in SHARES:
            row[SHORT[k]] = fmt(r["xstest"]["overall"][k])
        hh = r["hh"]
        row["HH agreement"] = "-" if hh["n"] == 0 else f"{100 * hh['agreement']:.0f}% ({100 * hh['ci'][0]:.0f}-{100 * hh['ci'][1]:.0f})"
        row["Arena-Hard kept"] = fmt(r["arena_kept"])
        row["s / 1000 texts"] = "-" if r["s_per_1000"] is None or math.isnan(r["s_per_1000"]) else f"{r['s_per_1000']:.2f}"
        main_rows.append(row)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)
    pd.set_option("display.max_colwidth", 70)
    print("\nSafety scorers on XSTest (overall, 95% Wilson CI) and HH-RLHF harmless pairs")
    print(pd.DataFrame(main_rows).to_string(index=False))
    types = [t for t in rows[0][1]["xstest"] if t != "overall"]
    per = []
    for t in types:
        row = {"XSTest type": t}
        for i, (_, r) in enumerate(rows):
            x = r["xstest"].get(t)
            cells = ["-" if x is None or x[k]["n"] == 0 else f"{100 * x[k]['share']:.0f}" for k in SHARES]
            row[f"[{i + 1}]"] = "/".join(cells)
        per.append(row)
    print("\nPer XSTest type: unsafe prompts caught / safe prompts kept / complying-with-unsafe caught / "
          "complying-with-safe kept (%); columns [i] are the rows above, in order")
    print(pd.DataFrame(per).to_string(index=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", type=int, default=TrainSettings().folds)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--llm-sample", type=int, default=24, help="items per set for the LLM stand-in (0: skip it)")
    ap.add_argument("--rows", type=str, default=",".join(ROWS), help=f"rows to compute, of {','.join(ROWS)}")
    ap.add_argument("--json", type=str, default=None, help="also write the figures to this JSON file")
    ap.add_argument("--merge", type=str, default=None,
                    help="start from the rows of an earlier --json file (recomputed rows replace theirs)")
    args = ap.parse_args()
    want = set(args.rows.split(","))
    unknown = want - set(ROWS)
    if unknown:
        ap.error(f"unknown rows {sorted(unknown)} (known: {', '.join(ROWS)})")

    P, A, H = xstest_prompts(), xstest_answers(), hh_pairs()
    ah = arena_hard_answers()
    rows: list[tuple[str, dict[str, Any]]] = []
    print(f"data: XSTest {len(P)} prompts, {len(A)} answers; HH-RLHF {len(H)} pairs; Arena-Hard {len(ah[1])} answers",
          flush=True)
    if "wordlist" in want:
        rows.append(("wordlist + PII", score_all(WordListScorer(), P, A, H, ah)))
    if "profanity" in want:
        try:
            rows.append(("profanity-check (alt-profanity-check 0.5)", score_all(ProfanityCheck(), P, A, H, ah)))
        except ImportError:
            print("profanity-check: not installed (pip install --no-deps -r bench/requirements-safety.txt), row skipped")
    settings = TrainSettings(folds=args.folds, seed=args.seed)
    cv = None
    if "cv" in want or "llm" in want:
        t0 = time.perf_counter()
        cv = offline_cv(settings)
        print(f"classifier CV: {args.folds} folds in {time.perf_counter() - t0:.0f} s", flush=True)
    if "cv" in want:
        assert cv is not None
        shipped = score_all(default_scorer(), P, A, H, ([], []))  # timing only: it trained on these
        clf = {"xstest": cv.xstest, "hh": cv.hh["response"], "s_per_1000": shipped["s_per_1000"]}
        # Arena-Hard was never trained on: the shipped artifact itself can be measured there
        art = default_scorer().score(ah[1], prompts=ah[0])
        kept = sum(r.safe for r in art)
        clf["arena_kept"] = {"share": kept / len(art), "n": len(art), "ci": wilson(kept, len(art))}
        rows.append((f"classifier (CV, {args.folds} folds; Arena-Hard: shipped artifact)", clf))
    if "transfer" in want:
        t0 = time.perf_counter()
        tr = offline_transfer(settings)
        print(f"classifier w/o XSTest: {time.perf_counter() - t0:.0f} s", flush=True)
        rows.append(("classifier w/o XSTest (HH + AlpacaEval)", {
            "xstest": tr.xstest, "hh": tr.hh["response"], "s_per_1000": math.nan,
            "arena_kept": {"share": math.nan, "n": 0, "ci": (math.nan, math.nan)}}))
    if "llm" in want and args.llm_sample > 0:
        rows.extend(llm_rows(args.llm_sample, args.seed, P, A, H, cv, ah))
    if args.merge:
        with open(args.merge, encoding="utf-8") as fh:
            old = json.load(fh)
        fresh = dict(rows)
        order = {n: i for i, n in enumerate(old)}
        merged = {**old, **fresh}
        rows = sorted(merged.items(), key=lambda kv: order.get(kv[0], len(order)))
    print_tables(rows)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(dict(rows), fh, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


if __name__ == "__main__":
    main()
