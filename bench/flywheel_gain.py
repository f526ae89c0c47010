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
    path = recipe.with_name(f".{recipe.stem}-{arm}.yaml")  # same folder: the recipe's relative paths hold
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", type=Path, default=ROOT / "bench/recipes/flywheel-gain.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/flywheel-gain")
    ap.add_argument("--arms", default="flywheel,distill,random,uniform")
    ap.add_argument("--battles", type=int, default=None, help="override battles_per_iteration (tiny test runs)")
    ap.add_argument("--iterations", type=int, default=None)
    args = ap.parse_args()
    recipe = args.recipe.resolve()
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


if __name__ == "__main__":
    main()
