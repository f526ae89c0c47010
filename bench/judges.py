"""Benchmark of banditarena.judges on real data: parser, verifier, reference-similarity judge.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/judges.py [--questions 100] [--repeat 3]

Prints one table:

* parser: outputs/s of ``parse_judgment`` over a mix of well-formed, drifting and garbage judge outputs,
  and the share it reads correctly (the expected scores are known for every sample);
* verifier: GSM8K test worked answers (1,319) - share verified correct, share of answers with a changed
  final number rejected, judgments/s;
* similarity judge (all-MiniLM-L6-v2 cosine to GPT-4's reference answer) on arena_bench_v1, the 8 models
  with answers: agreement of its pairwise preferences with the real GPT-4 1-10 judgments of the same
  answers (pairs where GPT-4 gave different scores), and Spearman/Kendall of the per-model mean cosine
  against the per-model mean GPT-4 score; pairs/s including embedding.

Timings: best of ``--repeat`` runs (the machine is shared). The similarity judge is a proxy; these figures
say how good a proxy it is against a real judge.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from banditarena.judges import (
    JudgeRequest,
    ReferenceSimilarityJudge,
    VerifierJudge,
    parse_judgment,
)
from banditarena.text import gsm8k_final, iter_gsm8k, iter_jsonl
from banditarena.types import Generation, Prompt

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def parser_corpus(n: int, seed: int = 0) -> list[tuple[str, tuple[float, float] | None]]:
    """Judge outputs in many shapes with known scores (None = must be invalid)."""
    rng = np.random.default_rng(seed)
    shapes = [
        "Rationale: {r}\nScore A: {a}\nScore B: {b}",
        "Assistant A: {a}/10\nAssistant B: {b}/10",
        "**Assistant A**: {a}\n**Assistant B**: {b}\n\n{r}",
        '```json\n{{"rationale": "{r}", "score_a": {a}, "score_b": {b}}}\n```',
        '{{"scores": {{"A": {a}, "B": {b}}}}}',
        "{r} My scores: [[{a}, {b}]]",
        "Assistant A receives a score of {a}, Assistant B receives a score of {b}. {r}",
        "### Assistant A\n{r}\nScore: {a}/10\n\n### Assistant B\n{r}\nScore: {b}/10",
    ]
    garbage = ["{r}", "Both are good. {r}", "Score A: {a}", "Score A: 12\nScore B: {b}", "[[A>B]] {r}"]
    rationale = "Assistant A explains the steps; B skips the edge case and its code does not compile."
    out = []
    for i in range(n):
        a, b = float(rng.integers(1, 11)), float(rng.integers(1, 11))
        if i % 10 == 9:
            out.append((garbage[i // 10 % len(garbage)].format(a=int(a), b=int(b), r=rationale), None))
        else:
            out.append((shapes[i % len(shapes)].format(a=int(a), b=int(b), r=rationale), (a, b)))
    return out


def bench_parser(repeat: int) -> list[tuple[str, str]]:
    corpus = parser_corpus(4000)
    t, parsed = _best(lambda: [parse_judgment(t) for t, _ in corpus], repeat)
    right = sum(
        (p.ok and (p.score_a, p.score_b) == exp) if exp is not None else (not p.ok)
        for p, (_, exp) in zip(parsed, corpus)
    )
    return [("parser: outputs/s", f"{len(corpus) / t:,.0f}"),
            ("parser: read correctly (incl. garbage -> invalid)", f"{right}/{len(corpus)}")]


def bench_verifier(repeat: int) -> list[tuple[str, str]]:
    judge = VerifierJudge()
    reqs = []
    for lineno, question, answer in iter_gsm8k(DATA / "gsm8k" / "test.jsonl"):
        wrong = answer.rsplit("####", 1)[0] + f"#### {float(gsm8k_final(answer) or 'nan') + 1:g}"
        p = Prompt(id=f"g{lineno - 1}", messages=[{"role": "user", "content": question}], reference=answer)
        reqs.append(JudgeRequest(p, Generation("worked", p.id, [answer]), Generation("changed", p.id, [wrong])))
    t, out = _best(lambda: judge.judge(reqs), repeat)
    right = sum(j.score_first == 1.0 for j in out)
    rejected = sum(j.score_second == 0.0 for j in out)
    return [("verifier: GSM8K worked answers verified", f"{right}/{len(out)}"),
            ("verifier: changed final answers rejected", f"{rejected}/{len(out)}"),
            ("verifier: judgments/s", f"{len(out) / t:,.0f}")]


def _fastchat(path: Path) -> dict[str, str]:
    return {str(d["question_id"]): d["choices"][0]["turns"][0] for _, d in iter_jsonl(path)}


def bench_similarity(n_questions: int) -> list[tuple[str, str]]:
    from scipy.stats import kendalltau, spearmanr

    base = DATA / "arena_bench_v1"
    refs = _fastchat(base / "reference_answer_gpt-4.jsonl")
    answers = {p.stem: _fastchat(p) for p in sorted((base / "model_answer").glob("*.jsonl"))}
    gpt4: dict[str, dict[str, float]] = {}
    for m in answers:
        path = base / "model_judgment" / f"{m}.jsonl"
        gpt4[m] = {str(r["question_id"]): r["score"] for r in map(json.loads, path.open())
                   if isinstance(r.get("score"), (int, float)) and r["score"] >= 0}
    qids = sorted(set(refs).intersection(*[set(a) for a in answers.values()]))[:n_questions]
    judge = ReferenceSimilarityJudge(references={q: refs[q] for q in qids})
    models = sorted(answers)
    reqs = []
    for q in qids:
        p = Prompt(id=q, messages=[{"role": "user", "content": "?"}])
        for a, b in itertools.combinations(models, 2):
            reqs.append(JudgeRequest(p, Generation(a, q, [answers[a][q]]), Generation(b, q, [answers[b][q]])))
    t0 = time.perf_counter()
    out = judge.judge(reqs)
    t = time.perf_counter() - t0
    agree = n = ties = 0
    cos: dict[str, list[float]] = {m: [] for m in models}
    for j in out:
        cos[j.first].append(j.score_first)
        cos[j.second].append(j.score_second)
        ga, gb = gpt4[j.first].get(j.prompt_id), gpt4[j.second].get(j.prompt_id)
        if ga is None or gb is None or ga == gb:
            continue
        n += 1
        if j.preferred == "tie":
            ties += 1
            continue
        agree += (j.preferred == "first") == (ga > gb)
    mean_cos = [float(np.mean(cos[m])) for m in models]
    mean_gpt4 = [float(np.mean([gpt4[m][q] for q in qids if q in gpt4[m]])) for m in models]
    rho = spearmanr(mean_cos, mean_gpt4).statistic
    tau = kendalltau(mean_cos, mean_gpt4).statistic
    return [
        ("similarity: questions x model pairs", f"{len(qids)} x {len(models) * (len(models) - 1) // 2}"),
        ("similarity: agreement with GPT-4 (decisive pairs)", f"{agree / max(1, n - ties):.3f} (n={n - ties})"),
        ("similarity: ties where GPT-4 decided", f"{ties}/{n}"),
        ("similarity: model ranking vs mean GPT-4 score", f"Spearman {rho:.3f}, Kendall {tau:.3f}"),
        ("similarity: pairs/s (cold, incl. embedding)", f"{len(out) / t:,.1f}"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=int, default=100, help="arena_bench_v1 questions for the similarity judge")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-similarity", action="store_true")
    args = ap.parse_args()
    rows = bench_parser(args.repeat) + bench_verifier(args.repeat)
    if not args.skip_similarity:
        rows += bench_similarity(args.questions)
    w = max(len(k) for k, _ in rows)
    print(f"{'measure':<{w}}  value")
    print(f"{'-' * w}  {'-' * 24}")
    for k, v in rows:
        print(f"{k:<{w}}  {v}")


if __name__ == "__main__":
    main()
