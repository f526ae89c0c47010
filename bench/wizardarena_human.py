"""WizardArena against human votes: offline arenas over 27 AlpacaEval models vs Chatbot Arena Elo, one table.

Every judge ranks the same 27 models' real answers to the 805 AlpacaEval instructions; each ranking is compared
with Chatbot Arena's Elo from human votes (benchmarks.csv: "Arena Elo [April 18, 2024]", and the Feb 2, 2024
column for the 14 models the April column leaves blank; on these models AlpacaEval 2.0 LC has Spearman 0.98
with it, the raw win rate 0.92, average length 0.40):

* **similarity**: MiniLM cosine of each answer to the reference answer (gpt4_1106_preview's, the AlpacaEval
  2.0 baseline); all pairs of models on every instruction, both orders.
* **learned (out-of-fold)**: the learned judge of ``recipes/judge-learned.yaml``; every (model, instruction)
  score comes from a head trained without that instruction (5 folds) and without that model's labels
  (and its aliases'): grouped CV by model AND instruction. All pairs.
* **learned-fast (out-of-fold)**: the same, for ``recipes/judge-learned-fast.yaml`` (MiniLM's static token
  table instead of MiniLM run).
* **GPT-4 Turbo (recorded, control)**: AlpacaEval's real annotations, 9 models against the baseline (10 models).
* **AlpacaEval 2.0 LC / raw win rate**: the official leaderboard file's numbers (GPT-4 Turbo, ~$8 per model).
* **average length**: the leaderboard's avg_length, as an anchor.

Columns: models compared; Spearman, Kendall, Arena-Hard's agreement-with-CI (Elo taken as exact) and
separability of the Bradley-Terry leaderboard (95% CIs from 100 bootstrap resamples of the instructions);
Spearman without the reference model (the similarity judge's reference model wins every battle by
construction); Spearman of the style-controlled leaderboard (length + markdown as covariates); judge calls;
price; wall time; position-flip rate (both orders judged); length bias on the same pairs (each annotated
model's answer against the baseline's: share of decided pairs won by the longer answer).

A second table: the cheap-first cascade (learned judge, out-of-fold, cheap; the recorded GPT-4 Turbo
annotations, expensive) on the 9 annotated models vs the baseline, threshold calibrated by fixed-sequence
testing on half of the instructions and measured on the other half, for alpha in {0.05, 0.1, 0.2}
(delta 0.1), over ``--splits`` random splits.

    .venv/bin/python bench/wizardarena_human.py [--bootstrap 100] [--splits 20] [--speed-pairs 200]

Embeddings are cached on disk (~/.cache/banditarena/embeddings); the first run embeds ~26k texts with
MiniLM (about 40-60 min on 2 busy cores), later runs take minutes. Out-of-fold scores are cached in
bench/out/wizardarena (keyed by the recipe and data hashes); --no-cache recomputes them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from banditarena.judges.annotations import load_annotations, text_key
from banditarena.judges.cascade import calibrate_threshold, pair_confidence
from banditarena.judges.pointwise import pointwise_leaderboard
from banditarena.judges.training import (
    arena_elo,
    cross_validate,
    load_arena_data,
    load_labels,
    load_train_recipe,
)
from banditarena.paths import data_dir
from banditarena.ratings import agreement_with_ci, kendall, separability, spearman
from banditarena.types import stable_hash

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "src" / "banditarena" / "recipes" / "judge-learned.yaml"
FAST_RECIPE = ROOT / "src" / "banditarena" / "recipes" / "judge-learned-fast.yaml"
OUT = ROOT / "bench" / "out" / "wizardarena"


# ------------------------------------------------------------------------------------------------ helpers


def metrics(lb: pd.DataFrame | pd.Series, elo: pd.Series, reference_model: str) -> dict[str, float]:
    ref = pd.DataFrame({"rating": elo})
    frame = lb if isinstance(lb, pd.DataFrame) else pd.DataFrame({"rating": lb})
    common = [m for m in frame.index if m in elo.index]
    out = {"models": len(common), "spearman": spearman(frame, ref), "kendall": kendall(frame, ref)}
    has_ci = {"ci_low", "ci_high"} <= set(frame.columns)
    out["agreement"] = agreement_with_ci(frame, ref) if has_ci else math.nan
    out["separability"] = separability(frame.loc[common]) if has_ci else math.nan
    rest = [m for m in common if m != reference_model]
    out["spearman_no_ref"] = spearman(frame.loc[rest], ref) if len(rest) < len(common) else out["spearman"]
    return out


def style_spearman(scores: dict[str, np.ndarray], texts: dict[str, list[str]], elo: pd.Series,
                   max_instructions: int | None = None) -> float:
    """Spearman vs Elo of the style-controlled all-pairs leaderboard (style counts per answer, computed once)."""
    from banditarena.judges.pointwise import pair_tensor
    from banditarena.ratings import STYLE_FEATURES, fit_style_bt, style_counts

    models, ii, jj, T = pair_tensor(scores)
    n = T.shape[0] if max_instructions is None else min(max_instructions, T.shape[0])
    counts = {m: [style_counts(t) for t in texts[m][:n]] for m in models}
    rows = {k: [] for k in ("model_a", "model_b", "winner", *(f"{f}_{s}" for f in STYLE_FEATURES for s in "ab"))}
    names = np.array(["model_a", "model_b", "tie"])
    for q in range(n):
        valid = T[q].sum(axis=1) > 0
        win = names[T[q].argmax(axis=1)]
        for k in np.flatnonzero(valid):
            a, b = models[ii[k]], models[jj[k]]
            rows["model_a"].append(a)
            rows["model_b"].append(b)
            rows["winner"].append(win[k])
            for f in STYLE_FEATURES:
                rows[f"{f}_a"].append(counts[a][q][f])
                rows[f"{f}_b"].append(counts[b][q][f])
    res = fit_style_bt(pd.DataFrame(rows), bootstrap=0)
    return spearman(res.leaderboard, pd.DataFrame({"rating": elo}))


def longer_wins(pairs: list[tuple[int, int, bool]]) -> tuple[float, float]:
    """Share of decided (answer, reference) pairs won by the longer answer, plain and balanced (averaged over
    "answer longer" and "reference longer": 0.5 when length decides nothing); pairs (len_a, len_ref, a_won)."""
    from banditarena.judges.training import balanced_longer_wins

    keep = [(la > lr) == won for la, lr, won in pairs if la != lr]
    if not keep:
        return math.nan, math.nan
    la, lr, won = (np.array(x) for x in zip(*pairs))
    return float(np.mean(keep)), balanced_longer_wins(la, lr, won)


def flip_rate(judge, prompts, answers_a, answers_b) -> float:
    """Share of pairs whose preferred model changes when the order is swapped (both orders really judged)."""
    from banditarena.judges import JudgeRequest
    from banditarena.types import Generation

    reqs = []
    for p, a, b in zip(prompts, answers_a, answers_b):
        ga, gb = Generation("A", p.id, [a]), Generation("B", p.id, [b])
        reqs += [JudgeRequest(p, ga, gb), JudgeRequest(p, gb, ga)]
    out = judge.judge(reqs)
    flips = 0
    for k in range(0, len(out), 2):
        x, y = out[k].preferred, out[k + 1].preferred
        flips += (x == "first" and y == "first") or (x == "second" and y == "second")
    return flips / max(1, len(out) // 2)


# ------------------------------------------------------------------------------------------------ judges


def similarity_scores(arena) -> tuple[dict[str, np.ndarray], float]:
    from banditarena.models.embed import Embedder
    from banditarena.models.hub import cache_dir

    t0 = time.perf_counter()
    emb = Embedder(cache_dir=cache_dir() / "embeddings")
    ref = emb.encode(arena.references)
    out = {}
    for m, ans in arena.answers.items():
        a = emb.encode([x if x.strip() else " " for x in ans])
        out[m] = np.where([bool(x.strip()) for x in ans], (a * ref).sum(axis=1), np.nan)
    return out, time.perf_counter() - t0


def learned_oof(recipe, no_cache: bool, bootstrap: int):
    labels = load_labels(recipe)
    key = stable_hash({"recipe": recipe.model_dump(mode="json", exclude={"output"}), "data": labels.files,
                       "code": _code_hash()}, 16)
    path = OUT / f"oof-{key}.npz"
    if path.exists() and not no_cache:
        z = np.load(path, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        return {m: z[f"s_{m}"] for m in meta["models"]}, meta
    t0 = time.perf_counter()
    res = cross_validate(recipe, modes=("instruction", "model", "both"), progress=True)
    secs = time.perf_counter() - t0
    scores = res.modes["both"].scores
    meta = {"models": sorted(scores), "seconds": secs, "fits": {k: r.fits for k, r in res.modes.items()},
            "modes": {k: {kk: float(vv) for kk, vv in r.metrics.items()} for k, r in res.modes.items()},
            "length_bias": res.length_bias, "labels": res.labels}
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(path, meta=json.dumps(meta), **{f"s_{m}": s for m, s in scores.items()})
    return scores, meta


def _code_hash() -> str:
    import hashlib

    h = hashlib.sha256()
    for f in ("judges/learned.py", "judges/training.py", "judges/labels.py", "judges/pointwise.py", "models/embed.py"):
        h.update((ROOT / "src" / "banditarena" / f).read_bytes())
    return h.hexdigest()[:16]


def gpt4_turbo_scores(arena) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    ann = load_annotations(sorted((data_dir() / "alpaca_eval" / "annotations_gpt4_turbo").glob("*.json")))
    pos = {text_key(q): i for i, q in enumerate(arena.instructions)}
    n = len(arena.instructions)
    out: dict[str, np.ndarray] = {arena.reference_model: np.full(n, 0.5)}
    price = 0.0
    calls = 0
    for a in ann.annotations:
        if a.generator_2 == a.generator_1:
            continue
        out.setdefault(a.generator_2, np.full(n, np.nan))[pos[text_key(a.instruction)]] = a.win_2
        price += a.price_usd
        calls += 1
    return out, {"price": price, "calls": calls, "mean_price": price / max(1, calls)}


# ------------------------------------------------------------------------------------------------ cascade


def cascade_table(oof: dict[str, np.ndarray], gpt: dict[str, np.ndarray], arena, elo: pd.Series,
                  splits: int, seed: int, floors: tuple[float, ...] = (0.0,)) -> pd.DataFrame:
    """Cheap = learned (out-of-fold), expensive = recorded GPT-4 Turbo, on the annotated models vs the baseline."""
    base = arena.reference_model
    models = sorted(m for m in gpt if m != base)
    n = len(arena.instructions)
    p_ref = oof[base]  # the reference model's own answers score 0.5 (identical to the reference)
    rows = []
    cheap_p, conf, exp_p = {}, {}, {}
    for m in models:
        pc = np.array([pair_confidence(a, b) if np.isfinite(a) and np.isfinite(b) else (np.nan, np.nan)
                       for a, b in zip(oof[m], p_ref)])
        cheap_p[m], conf[m], exp_p[m] = pc[:, 0], pc[:, 1], gpt[m]
    for alpha, floor in [(a, f) for f in floors for a in (0.05, 0.1, 0.2)]:
        rng = np.random.default_rng(seed)  # the same splits for every setting
        acc = {k: [] for k in ("expensive_share", "agreement", "trusted_agreement", "sp_vs_expensive", "sp_vs_elo",
                               "sp_expensive_vs_elo", "threshold", "price")}
        for _s in range(splits):
            calib = rng.permutation(n)[: n // 2]
            is_cal = np.zeros(n, dtype=bool)
            is_cal[calib] = True
            c_conf, c_ok = [], []
            for m in models:
                keep = is_cal & np.isfinite(conf[m]) & np.isfinite(exp_p[m]) & (exp_p[m] != 0.5)
                c_conf.extend(conf[m][keep])
                c_ok.extend((cheap_p[m][keep] > 0.5) == (exp_p[m][keep] > 0.5))
            cal = calibrate_threshold(c_conf, c_ok, alpha=alpha, delta=0.1, min_escalation=floor)
            test = ~is_cal
            esc = dec = agree = t_agree = t_n = 0
            cas_scores = {base: np.full(n, 0.5)}
            exp_scores = {base: np.full(n, 0.5)}
            for m in models:
                keep = test & np.isfinite(conf[m]) & np.isfinite(exp_p[m])
                up = keep & (conf[m] < cal.threshold)
                down = keep & ~up
                esc += int(up.sum())
                dec += int(keep.sum())
                cheap_win = cheap_p[m] > 0.5
                exp_win = exp_p[m] > 0.5
                agree += int((up | (cheap_win == exp_win))[keep].sum())
                t_agree += int((cheap_win == exp_win)[down].sum())
                t_n += int(down.sum())
                s = np.where(up, exp_p[m], np.where(cheap_win, 1.0, 0.0))
                s[~keep] = np.nan
                cas_scores[m] = s
                e = exp_p[m].copy()
                e[~keep] = np.nan
                exp_scores[m] = e
            lb_c = pointwise_leaderboard(cas_scores, pairs="baseline", baseline=base, bootstrap=0)
            lb_e = pointwise_leaderboard(exp_scores, pairs="baseline", baseline=base, bootstrap=0)
            acc["expensive_share"].append(esc / dec)
            acc["agreement"].append(agree / dec)
            acc["trusted_agreement"].append(t_agree / t_n if t_n else math.nan)
            acc["sp_vs_expensive"].append(spearman(lb_c, lb_e))
            acc["sp_vs_elo"].append(spearman(lb_c, pd.DataFrame({"rating": elo})))
            acc["sp_expensive_vs_elo"].append(spearman(lb_e, pd.DataFrame({"rating": elo})))
            acc["threshold"].append(cal.threshold)
        rows.append({"alpha": alpha, "floor": floor, **{k: float(np.nanmean(v)) if v else math.nan for k, v in acc.items()},
                     "expensive_share_max": float(np.max(acc["expensive_share"])),
                     "agreement_min": float(np.min(acc["agreement"])),
                     "sp_vs_expensive_min": float(np.min(acc["sp_vs_expensive"]))})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ speed


def learned_speed(arena, n_pairs: int, seed: int, artifact: str | None = None) -> dict[str, float]:
    """Pairs/s of a shipped learned judge on fresh pairs of fresh instructions, its embedder really run (no
    vector cache: instruction, reference and both answers are embedded for every pair)."""
    from banditarena.judges import JudgeRequest
    from banditarena.judges.learned import LearnedJudge, load_artifact
    from banditarena.models.embed import make_embedder
    from banditarena.types import Generation, Prompt

    rng = np.random.default_rng(seed)
    models = sorted(arena.answers)
    spec = load_artifact(artifact).spec
    judge = LearnedJudge(artifact, embedder=make_embedder(spec.embedder, max_seq_length=spec.max_seq_length))
    judge.scorer.featurizer.embedder.encode(["warm up"])  # load the model outside the timing
    reqs, words = [], []
    for k in rng.choice(len(arena.instructions), n_pairs, replace=False):
        a, b = rng.choice(len(models), 2, replace=False)
        p = Prompt(f"q{k}", [{"role": "user", "content": arena.instructions[k]}], reference=arena.references[k])
        ta, tb = arena.answers[models[a]][k], arena.answers[models[b]][k]
        words += [len(ta.split()), len(tb.split())]
        reqs.append(JudgeRequest(p, Generation(models[a], p.id, [ta]), Generation(models[b], p.id, [tb])))
    t0 = time.perf_counter()
    out = judge.judge(reqs)
    dt = time.perf_counter() - t0
    t1 = time.perf_counter()
    judge.judge([JudgeRequest(r.prompt, r.second, r.first) for r in reqs])  # the other order: cached scores
    dt2 = time.perf_counter() - t1
    assert all(j.ok for j in out)
    return {"pairs": n_pairs, "pairs_per_s": n_pairs / dt, "reverse_pairs_per_s": n_pairs / dt2,
            "mean_words": float(np.mean(words)), "mean_chars": float(np.mean([len(r.first.text) for r in reqs]))}


def print_speed(arena, n_pairs: int, seed: int) -> None:
    print(f"\nLearned judges' speed ({n_pairs} fresh pairs on fresh instructions: instruction, reference "
          "and both answers embedded for every pair, no vector cache; 2 CPU threads; load average "
          f"{os.getloadavg()[0]:.2f} at the start)")
    for label, art in (("learned (MiniLM, 256 tokens)", None), ("learned-fast (static MiniLM)", "judge-learned-fast")):
        sp = learned_speed(arena, n_pairs, seed, art)
        print(f"  {label:<30} {sp['pairs_per_s']:8.1f} fresh pairs/s; the other order of the same pairs "
              f"{sp['reverse_pairs_per_s']:8.0f} pairs/s (cached scores); mean answer {sp['mean_words']:.0f} words, "
              f"{sp['mean_chars']:.0f} chars")
    print("  an all-pairs arena pays 27 scorings per instruction for 351 pairs")


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--splits", type=int, default=20, help="random calibration/test splits for the cascade")
    ap.add_argument("--speed-pairs", type=int, default=200, help="fresh pairs for the learned judge's speed (0: skip)")
    ap.add_argument("--flip-pairs", type=int, default=500, help="pairs judged in both orders for the flip rate")
    ap.add_argument("--style-instructions", type=int, default=805, help="instructions for the style-controlled fits")
    ap.add_argument("--floors", default="0,0.2", help="escalation floors (share of pairs) for the cascade table")
    ap.add_argument("--speed-only", action="store_true", help="only the learned judges' speed (take it on a quiet machine)")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t_all = time.perf_counter()
    recipe = load_train_recipe(RECIPE)
    arena = load_arena_data(recipe)
    if args.speed_only:
        print_speed(arena, args.speed_pairs or 200, args.seed)
        return
    elo = arena_elo(recipe.resolve(recipe.validation.elo))
    base = arena.reference_model
    lb_file = pd.read_csv(data_dir() / "alpaca_eval" / "leaderboard_alpaca_eval_2.csv", index_col=0)
    n_models, n_inst = len(arena.answers), len(arena.instructions)
    rows: list[dict[str, object]] = []

    # lengths of the same pairs (each annotated model vs the baseline) for the length-bias column
    gpt, gmeta = gpt4_turbo_scores(arena)
    annotated = sorted(m for m in gpt if m != base)

    def same_pairs_longer(scores: dict[str, np.ndarray], ref_scores: np.ndarray | float) -> tuple[float, float]:
        pairs = []
        for m in annotated:
            for i in range(n_inst):
                s, g = scores[m][i], gpt[m][i]
                r = ref_scores if np.isscalar(ref_scores) else ref_scores[i]
                if not (np.isfinite(s) and np.isfinite(g)) or g == 0.5 or s == r:
                    continue
                pairs.append((len(arena.answers[m][i]), len(arena.references[i]), bool(s > r)))
        return longer_wins(pairs)

    from banditarena.judges import ReferenceSimilarityJudge
    from banditarena.judges.learned import LearnedJudge
    from banditarena.types import Prompt

    rng = np.random.default_rng(args.seed)
    fl_models = sorted(arena.answers)
    fl = [(int(k), *rng.choice(len(fl_models), 2, replace=False)) for k in rng.integers(0, n_inst, args.flip_pairs)]
    fl_prompts = [Prompt(f"q{k}", [{"role": "user", "content": arena.instructions[k]}], reference=arena.references[k])
                  for k, _, _ in fl]
    fl_a = [arena.answers[fl_models[a]][k] for k, a, _ in fl]
    fl_b = [arena.answers[fl_models[b]][k] for k, _, b in fl]

    # 1. similarity
    sim, sim_s = similarity_scores(arena)
    lb = pointwise_leaderboard(sim, bootstrap=args.bootstrap, seed=args.seed)
    from banditarena.models.embed import Embedder
    from banditarena.models.hub import cache_dir

    sim_judge = ReferenceSimilarityJudge(Embedder(cache_dir=cache_dir() / "embeddings"), tie_margin=0.0)
    rows.append({"judge": "similarity (MiniLM cosine to the reference)", **metrics(lb, elo, base),
                 "sp_style": style_spearman(sim, arena.answers, elo, args.style_instructions),
                 "calls": f"{n_models * n_inst:,} scorings", "price": 0.0, "wall_s": sim_s,
                 "flip": flip_rate(sim_judge, fl_prompts, fl_a, fl_b),
                 "longer_wins": same_pairs_longer(sim, 1.0)})
    lbs = {"similarity": lb}

    # 2. learned, out of fold (model AND instruction held out)
    oof, meta = learned_oof(recipe, args.no_cache, args.bootstrap)
    lb = pointwise_leaderboard(oof, bootstrap=args.bootstrap, seed=args.seed)
    learned_judge = LearnedJudge(None)
    rows.append({"judge": "learned, out-of-fold (model+instruction held out)", **metrics(lb, elo, base),
                 "sp_style": style_spearman(oof, arena.answers, elo, args.style_instructions),
                 "calls": f"{n_models * n_inst:,} scorings", "price": 0.0,
                 "wall_s": meta["seconds"], "flip": flip_rate(learned_judge, fl_prompts, fl_a, fl_b),
                 "longer_wins": same_pairs_longer(oof, oof[base])})
    lbs["learned"] = lb

    # 2b. the fast learned judge (static MiniLM token table), out of fold the same way
    fast_recipe = load_train_recipe(FAST_RECIPE)
    foof, fmeta = learned_oof(fast_recipe, args.no_cache, args.bootstrap)
    lb = pointwise_leaderboard(foof, bootstrap=args.bootstrap, seed=args.seed)
    rows.append({"judge": "learned-fast (static MiniLM), out-of-fold (same CV)", **metrics(lb, elo, base),
                 "sp_style": style_spearman(foof, arena.answers, elo, args.style_instructions),
                 "calls": f"{n_models * n_inst:,} scorings", "price": 0.0,
                 "wall_s": fmeta["seconds"], "flip": flip_rate(LearnedJudge("judge-learned-fast"), fl_prompts, fl_a, fl_b),
                 "longer_wins": same_pairs_longer(foof, foof[base])})
    lbs["learned_fast"] = lb

    # 3. GPT-4 Turbo recorded annotations (control): 9 models vs the baseline
    lb = pointwise_leaderboard(gpt, pairs="baseline", baseline=base, bootstrap=args.bootstrap, seed=args.seed)
    rows.append({"judge": "GPT-4 Turbo, recorded annotations (control)", **metrics(lb, elo, base),
                 "sp_style": math.nan, "calls": f"{gmeta['calls']:,} calls", "price": gmeta["price"],
                 "wall_s": math.nan, "flip": math.nan, "longer_wins": same_pairs_longer(gpt, 0.5)})
    lbs["gpt4_turbo"] = lb

    # 4-6. AlpacaEval 2.0 leaderboard numbers and length
    est = gmeta["mean_price"] * n_inst * (n_models - 1)
    wr = lb_file["win_rate"]
    wr_ci = pd.DataFrame({"rating": wr, "ci_low": wr - 1.96 * lb_file["standard_error"],
                          "ci_high": wr + 1.96 * lb_file["standard_error"]})
    for label, frame in (("AlpacaEval 2.0 LC win rate (leaderboard file)", lb_file["length_controlled_winrate"]),
                         ("AlpacaEval 2.0 raw win rate (leaderboard file, +-1.96 SE)", wr_ci),
                         ("average answer length (leaderboard file)", lb_file["avg_length"])):
        is_len = "length" in label
        rows.append({"judge": label, **metrics(frame, elo, base), "sp_style": math.nan,
                     "calls": "-" if is_len else f"{(n_models - 1) * n_inst:,} calls", "price": 0.0 if is_len else est,
                     "wall_s": math.nan, "flip": math.nan, "longer_wins": (math.nan, math.nan)})
    table = pd.DataFrame(rows)

    print(f"\nWizardArena vs Chatbot Arena human votes: {n_models} AlpacaEval models x {n_inst} instructions; "
          f"reference answers: {base}")
    print("Elo: 'Arena Elo [April 18, 2024]', Feb 2, 2024 where April is blank; CIs: 95%, "
          f"{args.bootstrap} bootstrap resamples of the instructions; all pairs unless noted\n")
    hdr = (f"{'judge':<60}{'models':>7}{'Spearman':>9}{'Kendall':>8}{'agr-CI':>7}{'separ.':>7}{'Sp-noref':>9}"
           f"{'Sp-style':>9}{'judge calls':>20}{'price $':>9}{'wall s':>8}{'flips':>6}{'longer':>7}{'bal.':>6}")
    print(hdr)
    print("-" * len(hdr))

    def f(v: object, fmt: str) -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    for r in table.to_dict("records"):
        price = "-" if r["price"] is None else ("0" if r["price"] == 0 else f"{r['price']:.0f}" +
                                                ("*" if "leaderboard" in str(r["judge"]) else ""))
        print(f"{r['judge']:<60}{r['models']:>7}{f(r['spearman'], '.3f'):>9}{f(r['kendall'], '.3f'):>8}"
              f"{f(r['agreement'], '.2f'):>7}{f(r['separability'], '.2f'):>7}{f(r['spearman_no_ref'], '.3f'):>9}"
              f"{f(r['sp_style'], '.3f'):>9}{r['calls']:>20}{price:>9}{f(r['wall_s'], '.0f'):>8}"
              f"{f(r['flip'], '.3f'):>6}{f(r['longer_wins'][0], '.3f'):>7}{f(r['longer_wins'][1], '.3f'):>6}")
    print("\n* estimated: mean recorded GPT-4 Turbo price per annotation x 805 x 26 models. Sp-noref: without the "
          f"reference model {base}. longer: share of decided (annotated model, baseline) pairs won by the longer "
          "answer, same pairs for every judge; bal.: the same averaged over 'answer longer' and 'baseline longer' "
          "(0.5: length decides nothing; the plain share mostly reflects how often the usually longer baseline wins). flips: position-flip rate over "
          f"{args.flip_pairs} random pairs judged in both orders (GPT-4 Turbo's annotations hold one order).")

    # per-mode CV tables of the learned judges
    for title, mt in (("Learned judge (MiniLM)", meta), ("Learned-fast judge (static MiniLM)", fmeta)):
        print(f"\n{title}, grouped cross-validation (out-of-fold scores; all-pairs arena vs Elo; labels: "
              f"{mt['labels']['rows']} rows, skipped {mt['labels']['skipped']})")
        print(f"{'held out':<14}{'Spearman':>9}{'Sp-style':>9}{'Kendall':>8}{'agr-CI':>7}{'label agree':>12}"
              f"{'(always ref)':>13}{'pair acc':>9}{'9-model Sp':>11}{'fits':>6}")
        for mode, m in mt["modes"].items():
            print(f"{mode:<14}{m['spearman']:>9.3f}{m.get('spearman_style', math.nan):>9.3f}{m['kendall']:>8.3f}"
                  f"{m['agreement_with_ci']:>7.2f}{m['label_agreement']:>12.3f}"
                  f"{m['label_agreement_always_reference']:>13.3f}{m['within_instruction_pair_accuracy']:>9.3f}"
                  f"{m['annotated_winrate_spearman']:>11.3f}{mt['fits'][mode]:>6}")
        lbias = mt["length_bias"]
        print("length bias on the same pairs (annotated model vs reference): " + "; ".join(
            f"{k}: longer wins {v['longer_win_rate']:.3f} (balanced {v['longer_win_rate_balanced']:.3f}), slope {v['length_slope']:.2f} "
            f"[{v['length_slope_ci_low']:.2f}, {v['length_slope_ci_high']:.2f}]" for k, v in lbias.items()))

    # cascade: each learned judge as the cheap side
    for cheap_name, cheap_scores in (("learned", oof), ("learned-fast", foof)):
        ct = cascade_table(cheap_scores, gpt, arena, elo, args.splits, args.seed,
                           tuple(float(x) for x in args.floors.split(",")))
        print(f"\nCheap-first cascade: {cheap_name} (out-of-fold) -> GPT-4 Turbo (recorded), 9 models vs {base}; "
              f"threshold by fixed-sequence testing (delta 0.1) on half the instructions, measured on the other half; "
              f"mean over {args.splits} splits (worst split in brackets)")
        print(f"{'alpha':>6}{'floor':>6}{'paid (share of pairs)':>24}{'agreement':>17}{'trusted agr.':>13}"
              f"{'Sp vs GPT-4T-only':>21}{'Sp vs Elo':>11}{'(GPT-4T-only vs Elo)':>22}")
        for r in ct.to_dict("records"):
            print(f"{r['alpha']:>6.2f}{r['floor']:>6.2f}{r['expensive_share']:>15.3f} [{r['expensive_share_max']:.3f}]"
                  f"{r['agreement']:>9.3f} [{r['agreement_min']:.3f}]{r['trusted_agreement']:>13.3f}"
                  f"{r['sp_vs_expensive']:>12.3f} [{r['sp_vs_expensive_min']:.3f}]{r['sp_vs_elo']:>11.3f}"
                  f"{r['sp_expensive_vs_elo']:>22.3f}")

    # leaderboards side by side
    print("\nLeaderboards (Bradley-Terry, Elo scale) beside Chatbot Arena Elo")
    print(f"{'model':<28}{'Arena Elo':>10}{'LC WR':>7}{'WR':>7}{'similarity':>12}{'learned (95% CI)':>22}{'GPT-4T':>8}")
    for m in elo.index:
        if m not in arena.answers:
            continue
        lr = lbs["learned"].loc[m]
        g = lbs["gpt4_turbo"]["rating"].get(m, math.nan)
        print(f"{m:<28}{elo[m]:>10.0f}{lb_file.loc[m, 'length_controlled_winrate']:>7.1f}{lb_file.loc[m, 'win_rate']:>7.1f}"
              f"{lbs['similarity'].loc[m, 'rating']:>12.0f}{lr['rating']:>8.0f} ({lr['ci_low']:.0f}..{lr['ci_high']:.0f})"
              f"{f(g, '.0f'):>8}")

    if args.speed_pairs:
        print_speed(arena, args.speed_pairs, args.seed)
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
