"""LASeR reproduction over several seeds, with the noise experiment (sigma on one RM) for every method.

    .venv/bin/python bench/laser_seeds.py [--recipe src/banditarena/recipes/laser-math.yaml]
        [--run-dir runs/laser-seeds] [--seeds 0 1 2] [--workers 2] [--threads 1]
        [--set loop.iterations=6 --set data.n_train=48 ...] [--methods laser laser:loss single:partial ...]
        [--noise-rm partial] [--sigma 0.3] [--noise-methods ...] [--deadline-min M] [--report-only]

Each (seed, part, method) is a task in its own single-thread process, ``--workers`` at a time, ordered so
that every seed of the first methods finishes before the later ones start (a cut-off run still compares
the core methods over all seeds). Every task resumes from its run directory ``RUN_DIR/seed<s>/<part>``:
rerun the same command to continue. The base policy's greedy test accuracy does not depend on the seed
and is evaluated once (seed 0). ``--report-only`` prints the tables of what is done (see ``bench/experiments/multiseed.py``) and
writes ``RUN_DIR/report.md`` and ``RUN_DIR/report.html``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _recipe(args, seed: int, part: str) -> dict:
    from experiments.multiseed import apply_overrides, noisy_recipe

    from banditarena.laser import load_recipe

    d = load_recipe(args.recipe).model_dump(mode="json")
    d = apply_overrides(d, args.set or [])
    d["seed"] = seed
    if part == "noisy":
        d = noisy_recipe(d, args.noise_rm, args.sigma)
    return d


def _task(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from banditarena.laser import run_laser

    seed_s, part, method = args.task.split("=", 2)
    seed = int(seed_s)
    run = Path(args.run_dir) / f"seed{seed}" / part
    if method == "base":
        run_laser(_recipe(args, seed, part), run, progress=False, methods=[])
        return
    run_laser(_recipe(args, seed, part), run, progress=False, methods=[method], evaluate_base=False)


def _tasks(args, methods: list[str], noise_methods: list[str]) -> list[str]:
    out = [f"{args.seeds[0]}=clean=base"]
    for m in methods:
        out += [f"{s}=clean={m}" for s in args.seeds]
    for m in noise_methods:
        out += [f"{s}=noisy={m}" for s in args.seeds]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=str(ROOT / "src" / "banditarena" / "recipes" / "laser-math.yaml"))
    ap.add_argument("--run-dir", default=str(ROOT / "runs" / "laser-seeds"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", action="append", help="recipe override, dotted key=value (YAML value)")
    ap.add_argument("--methods", nargs="+", default=None, help="concrete methods (default: the recipe's)")
    ap.add_argument("--noise-rm", default="partial")
    ap.add_argument("--sigma", type=float, default=0.3)
    ap.add_argument("--noise-methods", nargs="*", default=None,
                    help="methods rerun with the noisy RM (default: every method that can use it)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", nargs="+", default=None,
                    help="exact tasks SEED=PART=METHOD to run, in order (default: every seed x method)")
    ap.add_argument("--max-total", type=int, default=None,
                    help="also wait while this many task processes of any runner on RUN_DIR are alive")
    ap.add_argument("--deadline-min", type=float, default=None, help="start no new task after this many minutes")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--routing", default=str(ROOT / "runs" / "laser-routing" / "routing.json"),
                    help="routing.json of bench/laser_routing.py, shown on the report page")
    ap.add_argument("--task", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.task:
        _task(args)
        return
    from experiments.multiseed import apply_overrides

    from banditarena.laser import load_recipe, method_names

    rc = load_recipe(apply_overrides(load_recipe(args.recipe).model_dump(mode="json"), args.set or []))
    methods = args.methods or method_names(rc)
    noise = args.noise_methods if args.noise_methods is not None else [
        m for m in methods if not m.startswith("single:") or m == f"single:{args.noise_rm}"]
    if not args.report_only:
        _run(args, list(args.tasks) if args.tasks else _tasks(args, methods, noise))
    from experiments.multiseed import report_seeds, write_seeds_report

    text = report_seeds(Path(args.run_dir), args.seeds, methods, noise, noise_rm=args.noise_rm, sigma=args.sigma)
    print(text)
    html = write_seeds_report(args.run_dir, args.seeds, methods, noise, noise_rm=args.noise_rm, sigma=args.sigma,
                              routing=args.routing)
    print(f"report: {html}")


def _room(args) -> bool:
    """Fewer than --max-total task processes on this run directory (from any runner) are alive."""
    if args.max_total is None:
        return True
    out = subprocess.run(["pgrep", "-f", f"laser_seeds.py.*--run-dir {args.run_dir} .*--task"], capture_output=True,
                         text=True, check=False).stdout.split()
    return len(out) < args.max_total


def _run(args, pending: list[str]) -> None:
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, "--recipe", args.recipe, "--run-dir", args.run_dir, "--noise-rm", args.noise_rm,
           "--sigma", str(args.sigma), "--threads", str(args.threads)]
    for s in args.set or []:
        cmd += ["--set", s]
    Path(args.run_dir).mkdir(parents=True, exist_ok=True)
    log = Path(args.run_dir) / "tasks.jsonl"
    running: list[tuple[str, subprocess.Popen, float]] = []
    while pending or running:
        for name, p, started in list(running):
            if p.poll() is not None:
                running.remove((name, p, started))
                rec = {"task": name, "exit": p.returncode, "seconds": round(time.perf_counter() - started, 1)}
                with log.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
                print(f"[{time.perf_counter() - t0:6.0f}s] done {name} (exit {p.returncode}, {rec['seconds']} s)",
                      flush=True)
        late = args.deadline_min is not None and time.perf_counter() - t0 > 60 * args.deadline_min
        while pending and len(running) < args.workers and not late and _room(args):
            name = pending.pop(0)
            running.append((name, subprocess.Popen(cmd + ["--task", name]), time.perf_counter()))
            print(f"[{time.perf_counter() - t0:6.0f}s] start {name}", flush=True)
        if late and pending:
            print(f"deadline: not started {pending}", flush=True)
            pending = []
        time.sleep(2)


if __name__ == "__main__":
    main()
