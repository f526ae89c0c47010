"""Does the flywheel lift its target? (issue 29) The shipped flywheel, through its CLI, on a scaled-up recipe.

    .venv/bin/python bench/flywheel_gain.py [--arms flywheel,distill,random,uniform] [--out bench/out/flywheel-gain]
                                            [--recipe bench/recipes/flywheel-gain.yaml] [--battles N] [--iterations N]

1. Writes the recipe's data files (deterministic): ``data/pool.jsonl`` (the 805 AlpacaEval instructions with
   gpt4_1106_preview's answers as references, plus 300 generated arithmetic word problems, seed 1), the worked
   solutions of those problems as a replay answer file, and ``data/arith-test.jsonl`` (100 held-out problems,
   seed 2; a problem whose text is also in the pool is dropped from the pool).
2. Trains the second evaluation judge if its artifact is missing (``banditarena judge train
   bench/recipes/judge-arena-bench-v1.yaml``).
3. Runs each arm as ``banditarena flywheel ARM.yaml --run-dir OUT/ARM`` (a subprocess, the user's path):
   ``flywheel`` (the recipe), ``distill`` (selection.mode distill from the strongest opponent: no battle, no
   judge), ``random`` (selection.mode random: the verdicts without the margin), ``uniform`` (every bandit
   uniform). Every arm trains on the same number of rows per iteration (``selection.sft_rows`` / ``dpo_rows``).
   A new arm's run store is seeded with the completions and judgments already paid for in the others (the
   base model's answers are the same in every arm), so nothing is paid for twice; a killed run resumes.
4. Prints one table per arm (the flywheel's own table: gains with paired CIs, style-controlled, the second
   judge, verifiable accuracy, answer length) and, for each baseline, the paired difference of the last
   iteration's gain against the flywheel arm's (bootstrap over the held-out prompts), to ``OUT/summary.md``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ARMS = {
    "flywheel": {},
    "distill": {"selection": {"mode": "distill", "distill_from": "gpt-4-turbo-2024-04-09"}},
    "random": {"selection": {"mode": "random"}},
    "uniform": {"bandit": {"clusters": {"policy": "uniform"}, "opponents": {"policy": "uniform"},
                           "strategies": {"policy": "uniform"}, "prompts": {"policy": "uniform"}}},
}


def build_data(data_dir: Path) -> None:
    """The pool, the worked solutions (a replay file) and the held-out arithmetic problems."""
    from banditarena.config import PromptsConfig
    from banditarena.laser.data import arithmetic_problems
    from banditarena.prompts import load_pool
    from banditarena.prompts.loaders import save_prompts

    data_dir.mkdir(parents=True, exist_ok=True)
    test = arithmetic_problems(100, seed=2, id_prefix="arith-test")
    held = {p.text for p in test}
    train = [p for p in arithmetic_problems(300, seed=1, id_prefix="arith") if p.text not in held]
    alpaca = load_pool(PromptsConfig(source="alpaca_eval"), seed=0)
    save_prompts([*alpaca, *train], data_dir / "pool.jsonl")
    save_prompts(test, data_dir / "arith-test.jsonl")
    with (data_dir / "worked-solutions.jsonl").open("w", encoding="utf-8") as fh:
        for p in train:
            work, ans = p.reference.split("\n#### ")
            fh.write(json.dumps({"uid": p.id, "model": "worked-solutions", "messages": [
                {"role": "user", "content": p.user_turns[0]},
                {"role": "assistant", "content": {"answer": f"{work}. The answer is {ans}."}}]}) + "\n")


def deep_update(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def arm_recipe(recipe: Path, arm: str, out: Path, battles: int | None, iterations: int | None) -> Path:
    """The arm's recipe next to the base one (relative paths keep resolving), named after the arm."""
    data = yaml.safe_load(recipe.read_text())
    data = deep_update(data, ARMS[arm])
    data["name"] = f"{data['name']}-{arm}"
    if battles:
        data["battles_per_iteration"] = battles
    if iterations:
        data["iterations"] = iterations
    path = arm_path(recipe, arm, battles, iterations)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def arm_path(recipe: Path, arm: str, battles: int | None, iterations: int | None) -> Path:
    """Where an arm's recipe is written: beside the base one (its relative paths hold), named by the overrides."""
    tail = "".join(f"-{k}{v}" for k, v in (("b", battles), ("i", iterations)) if v)
    return recipe.with_name(f".{recipe.stem}-{arm}{tail}.yaml")


def seed_store(run_dir: Path, donors: list[Path]) -> None:
    """Copy completions and judgments (content-addressed) already paid for in other arms into a new arm."""
    from banditarena.store import RunStore

    RunStore(run_dir).close()  # create the schema
    db = run_dir / "run.sqlite"
    con = sqlite3.connect(db)
    for d in donors:
        src = d / "run.sqlite"
        if not src.exists():
            continue
        con.execute("ATTACH DATABASE ? AS donor", (str(src),))
        for table in ("completions", "judgments"):
            con.execute(f"INSERT OR IGNORE INTO {table} SELECT * FROM donor.{table}")
        con.commit()
        con.execute("DETACH DATABASE donor")
    con.close()


def per_prompt(run_dir: Path, tag: str, contestant: str) -> dict[str, float]:
    """prompt id -> mean P(``contestant`` beats the opponent) over its evaluation battles tagged ``tag``."""
    from banditarena.store import RunStore

    b = RunStore(run_dir, create=False).battles(tag, valid_only=True)
    out: dict[str, list[float]] = {}
    for r in b.itertuples():
        if contestant not in (r.model_a, r.model_b):
            continue
        p = r.outcome if r.outcome == r.outcome and r.outcome is not None else \
            {"model_a": 1.0, "model_b": 0.0}.get(r.winner, 0.5)
        out.setdefault(r.prompt_id, []).append(p if r.model_a == contestant else 1.0 - p)
    return {k: sum(v) / len(v) for k, v in out.items()}


def correct(run_dir: Path, contestant: str, problems: dict[str, str]) -> dict[str, float]:
    from banditarena.store import RunStore
    from banditarena.text import is_correct

    g = RunStore(run_dir, create=False).generations()
    g = g[(g["contestant"] == contestant) & g["prompt_id"].isin(list(problems))]
    return {r.prompt_id: float(is_correct(r.text, problems[r.prompt_id])) for r in g.itertuples()}


def paired(a: dict[str, float], b: dict[str, float], seed: int = 0, rounds: int = 2000) -> tuple[float, float, float, int]:
    """Mean of a - b over the shared keys with a bootstrap 95% CI over those keys (paired)."""
    import numpy as np

    keys = sorted(set(a) & set(b))
    d = np.array([a[k] - b[k] for k in keys])
    if not len(d):
        return float("nan"), float("nan"), float("nan"), 0
    idx = np.random.default_rng(seed).integers(0, len(d), (rounds, len(d)))
    lo, hi = np.percentile(d[idx].mean(1), [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi), len(d)


def summarize(out: Path, recipe: Path, arms: list[str], battles: int | None = None,
              iterations: int | None = None) -> str:
    """Each finished arm's table (its own run, replayed: nothing is paid again) and every baseline's last
    checkpoint against the flywheel arm's, paired over the same held-out prompts / problems."""
    import math

    from banditarena.flywheel.loop import run_flywheel
    from banditarena.prompts.loaders import load_prompts

    lines = []
    last: dict[str, str] = {}
    for arm in arms:
        run_dir = out / arm
        path = arm_path(recipe, arm, battles, iterations)
        if not path.exists():
            continue
        n_it = yaml.safe_load(path.read_text())["iterations"]
        if not all((run_dir / "checkpoints" / f"it{i}" / "DONE").exists() for i in range(1, n_it + 1)) or \
                "# exit 0" not in (out / f"{arm}.log").read_text(errors="replace"):
            lines.append(f"\n(arm `{arm}`: not finished; rerun the bench to resume it)")
            continue
        res = run_flywheel(path, run_dir, progress=False)
        t = res.table()
        n = int(t["iteration"].max())
        elo = res.elo.set_index("iteration")
        last[arm] = str(elo.loc[n, "evaluated_as"])

        def ci(r: dict, k: str, pct: bool = False) -> str:
            v = r.get(k)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "-"
            f = (lambda x: f"{100 * x:+.1f}") if pct else (lambda x: f"{x:+.0f}")
            return f"{f(v)} ({f(r[k + '_low'])}..{f(r[k + '_high'])})"

        lines += [f"\n### arm `{arm}` ({run_dir})\n",
                  ("| it | gain (95% CI) | style-controlled | 2nd judge (arena_bench_v1) | accuracy % | "
                  "accuracy change (pts) | answer tokens | battles | SFT | DPO |"), "|" + "---|" * 10]
        for r in t.to_dict("records"):
            it0 = r["iteration"] == 0
            lines.append("| " + " | ".join([
                str(r["iteration"]), "-" if it0 else ci(r, "gain"), "-" if it0 else ci(r, "style_gain"),
                "-" if it0 else ci(r, "arena_bench_v1_gain"),
                f"{100 * r['accuracy']:.1f} ({100 * r['accuracy_low']:.1f}..{100 * r['accuracy_high']:.1f})",
                "-" if it0 else ci(r, "accuracy_gain", pct=True), f"{r['answer_tokens']:.0f}",
                str(r["battles"]), str(r["sft"]), str(r["dpo"])]) + " |")
    if "flywheel" in last:
        problems = {p.id: p.reference for p in load_prompts(recipe.parent.parent / "out/flywheel-gain/data/arith-test.jsonl")}
        fw = out / "flywheel"
        lines += ["\n### the flywheel's last checkpoint against each arm's, paired\n",
                  ("| arm | P(win) vs opponents, selecting judge: flywheel minus arm (95% CI) | same, 2nd judge | "
                  "accuracy: flywheel minus arm (pts) | prompts / problems |"), "|---|---|---|---|---|"]
        for arm, name in last.items():
            if arm == "flywheel":
                continue
            cells = []
            for tag in ("eval", "eval:arena_bench_v1"):
                m, lo, hi, k = paired(per_prompt(fw, tag, last["flywheel"]), per_prompt(out / arm, tag, name))
                cells.append(f"{100 * m:+.1f} ({100 * lo:+.1f}..{100 * hi:+.1f}) pts")
            m, lo, hi, k2 = paired(correct(fw, last["flywheel"], problems), correct(out / arm, name, problems))
            cells.append(f"{100 * m:+.1f} ({100 * lo:+.1f}..{100 * hi:+.1f})")
            lines.append(f"| {arm} | " + " | ".join(cells) + f" | {k} / {k2} |")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", type=Path, default=ROOT / "bench/recipes/flywheel-gain.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/flywheel-gain")
    ap.add_argument("--arms", default="flywheel,distill,random,uniform")
    ap.add_argument("--battles", type=int, default=None, help="override battles_per_iteration (tiny test runs)")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--summary", action="store_true", help="only summarise the finished arms")
    args = ap.parse_args()
    recipe = args.recipe.resolve()
    if args.summary:
        print(summarize(args.out.resolve(), recipe, args.arms.split(","), args.battles, args.iterations))
        return
    build_data(recipe.parent.parent / "out/flywheel-gain/data")
    judge_art = recipe.parent.parent / "out/judge-arena-bench-v1.npz"
    cli = [str(Path(sys.executable).with_name("banditarena"))]
    if not judge_art.exists():
        subprocess.run([*cli, "judge", "train", str(ROOT / "bench/recipes/judge-arena-bench-v1.yaml")], check=True)
    args.out.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    for arm in args.arms.split(","):
        run_dir = args.out / arm
        if not (run_dir / "run.sqlite").exists():
            seed_store(run_dir, done)
        path = arm_recipe(recipe, arm, args.out, args.battles, args.iterations)
        t0 = time.time()
        with (args.out / f"{arm}.log").open("a") as log:
            log.write(f"$ banditarena flywheel {path} --run-dir {run_dir} --no-progress  # {time.ctime()}\n")
            log.flush()
            rc = subprocess.run([*cli, "flywheel", str(path), "--run-dir", str(run_dir), "--no-progress"],
                                stdout=log, stderr=subprocess.STDOUT, check=False).returncode
            log.write(f"# exit {rc}, {time.time() - t0:.0f} s wall\n")
        print(f"{arm}: exit {rc}, {time.time() - t0:.0f} s; table in {args.out / f'{arm}.log'}", flush=True)
        if rc != 0:
            sys.exit(rc)
        done.append(run_dir)
    print(summarize(args.out.resolve(), recipe, args.arms.split(","), args.battles, args.iterations))


if __name__ == "__main__":
    main()
