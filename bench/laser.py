"""LASeR small-scale reproduction on CPU: the Table-1-style table, selection frequencies, noise robustness.

    .venv/bin/python bench/laser.py [--recipe src/banditarena/recipes/laser-arith.yaml] [--run-dir /tmp/laser-bench]
                                    [--noise-rm verifier] [--sigma 0.3] [--threads 1] [--workers 3]
                                    [--deadline-min M]

Runs the recipe's methods (clean) and again, with Gaussian noise sigma added to one reward model's scores,
every method that uses that RM (noisy). Each (part, method) is a task in its own single-thread process,
``--workers`` at a time, most informative first; all share resumable run directories (rerun the same
command to continue). Prints markdown tables and writes them to RUN_DIR/report.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _noisy_recipe(recipe, rm: str, sigma: float):
    from experiments.multiseed import noisy_recipe

    return noisy_recipe(recipe.model_dump(mode="json"), rm, sigma)


def _noisy_methods(recipe, rm: str) -> list[str]:
    from banditarena.laser import method_names

    return [m for m in method_names(recipe) if not m.startswith("single:") or m == f"single:{rm}"]


def _task(args) -> None:
    """One (part, method) task in its own process; several share a run directory (resumable)."""
    import torch

    torch.set_num_threads(args.threads)
    from banditarena.laser import load_recipe, run_laser

    part, method = args.task.split("=", 1)
    rc = load_recipe(args.recipe)
    src = rc if part == "clean" else _noisy_recipe(rc, args.noise_rm, args.sigma)
    if method == "base":
        run_laser(src, Path(args.run_dir) / part, progress=False, methods=[])
    else:
        run_laser(src, Path(args.run_dir) / part, progress=False, methods=[method], evaluate_base=False)


def _tasks(rc, noise_rm: str) -> list[str]:
    """Most informative first: base, LASeR, the single RMs, random, the ensemble, then the noisy reruns."""
    from banditarena.laser import method_names

    clean = method_names(rc)
    first = ["laser"] + [m for m in clean if m.startswith("single:")] + ["random", "ensemble_avg"]
    order = ["clean=base"] + [f"clean={m}" for m in first if m in clean]
    noisy = _noisy_methods(rc, noise_rm)
    order += [f"noisy={m}" for m in ("laser", f"single:{noise_rm}") if m in noisy]
    order += [f"clean={m}" for m in clean if f"clean={m}" not in order]
    order += [f"noisy={m}" for m in noisy if f"noisy={m}" not in order]
    return order


def _md(df) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=str(ROOT / "src" / "banditarena" / "recipes" / "laser-arith.yaml"))
    ap.add_argument("--run-dir", default="/tmp/laser-bench")
    ap.add_argument("--noise-rm", default="verifier")
    ap.add_argument("--sigma", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=3, help="parallel single-thread worker processes")
    ap.add_argument("--deadline-min", type=float, default=None,
                    help="start no new task after this many minutes (the report marks what did not run)")
    ap.add_argument("--report-only", action="store_true", help="only print the tables of what is done")
    ap.add_argument("--task", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.task:
        _task(args)
        return
    from banditarena.laser import load_recipe

    rc = load_recipe(args.recipe)
    if args.report_only:
        _report(args, rc, float("nan"), [], [])
        return
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, "--recipe", args.recipe, "--run-dir", args.run_dir, "--noise-rm", args.noise_rm,
           "--sigma", str(args.sigma), "--threads", str(args.threads)]
    pending = _tasks(rc, args.noise_rm)
    (Path(args.run_dir) / "clean").mkdir(parents=True, exist_ok=True)
    running: list[tuple[str, subprocess.Popen]] = []
    failed: list[str] = []
    skipped: list[str] = []
    base_first = pending.pop(0)
    running.append((base_first, subprocess.Popen(cmd + ["--task", base_first])))
    while pending or running:
        for name, p in list(running):
            if p.poll() is not None:
                running.remove((name, p))
                if p.returncode:
                    failed.append(name)
                print(f"[{time.perf_counter() - t0:6.0f}s] done {name} (exit {p.returncode})", flush=True)
        late = args.deadline_min is not None and time.perf_counter() - t0 > 60 * args.deadline_min
        while pending and len(running) < args.workers and not late:
            name = pending.pop(0)
            running.append((name, subprocess.Popen(cmd + ["--task", name])))
            print(f"[{time.perf_counter() - t0:6.0f}s] start {name}", flush=True)
        if late and pending:
            skipped += pending
            pending = []
        time.sleep(2)
    total = time.perf_counter() - t0
    _report(args, rc, total, failed, skipped)


def _done(run: Path, methods: list[str]) -> list[str]:
    import json

    out = []
    for m in methods:
        f = run / m.replace(":", "_") / "state.json"
        if f.exists() and json.loads(f.read_text())["done"]:
            out.append(m)
    return out


def _report(args, rc, total: float, failed: list[str], skipped: list[str]) -> None:
    import pandas as pd

    from banditarena.errors import ConfigError
    from banditarena.laser import method_names, run_laser, selection_frequencies

    run = Path(args.run_dir)
    clean = run_laser(rc, run / "clean", progress=False, evaluate_base=False,
                      methods=_done(run / "clean", method_names(rc)))
    noisy = run_laser(_noisy_recipe(rc, args.noise_rm, args.sigma), run / "noisy", progress=False,
                      evaluate_base=False, methods=_done(run / "noisy", _noisy_methods(rc, args.noise_rm)))
    out: list[str] = [f"# LASeR bench ({rc.name})", ""]
    t = clean.table.copy()
    if t.empty:
        t = pd.DataFrame({"method": [], "rm_calls": []})
    ens = t.loc[t["method"] == "ensemble_avg", "rm_calls"]
    ens_calls = float(ens.iloc[0]) if len(ens) else float("nan")
    t["calls_vs_ensemble"] = t["rm_calls"] / ens_calls
    cols = ["method", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "delta", "dev_accuracy", "rm_calls", "calls_vs_ensemble", "wall_s", "pairs",
            "tie_skips", "nan_skips"] + sorted(c for c in t.columns if c.startswith("acc_"))
    out += ["## Table 1 (test accuracy, greedy; RM calls = answers scored; wall = training loop, no eval)", "",
            _md(t[[c for c in cols if c in t.columns]]), ""]
    pairs = []
    for other in ("best_single", "base", "random", "ensemble_avg", "sequential"):
        try:
            r = clean.compare("laser", other)
        except ConfigError:  # a method that did not run (no per-problem results) is not compared
            continue
        pairs.append({"laser vs": other + (f" ({clean.best_single})" if other == "best_single" else ""),
                      "accuracy diff": r["diff"], "laser only": r["a_only"], "other only": r["b_only"],
                      "McNemar exact p": r["p_value"]})
    if pairs:
        out += ["## LASeR against the baselines, paired on the same test problems", "",
                _md(pd.DataFrame(pairs)), ""]
    out += ["## LASeR selection frequencies (overall)", "", _md(selection_frequencies(clean.selections).reset_index()),
            "", "## LASeR selection frequencies per category", "",
            _md(selection_frequencies(clean.selections, by_category=True).reset_index()), ""]
    h = clean.history
    if not h.empty:
        lc = h[h["method"] == "laser"][["iteration", "loss", "n_rows", "rm_calls"] +
                                       (["test_acc"] if "test_acc" in h else [])]
        sel = clean.selections[clean.selections["method"] == "laser"].drop_duplicates("iteration")
        lc = lc.merge(sel[["iteration", "rm", "reward"]], on="iteration", how="left")
        out += ["## LASeR per iteration (loss = mean DPO+NLL step loss; reward = normalised bandit reward)", "",
                _md(lc), ""]
        losses = h.groupby("method")["loss"].mean().reset_index().rename(columns={"loss": "mean_train_loss"})
        out += ["## Mean training loss per method", "", _md(losses), ""]
    # noise robustness: clean vs noisy accuracy per method
    empty = pd.Series(dtype=float)
    nt = noisy.table.set_index("method")["accuracy"] if "accuracy" in noisy.table else empty
    ct = clean.table.set_index("method")["accuracy"] if "accuracy" in clean.table else empty
    rows = []
    affected = set(_noisy_methods(rc, args.noise_rm))
    col = f"sigma={args.sigma:g} on {args.noise_rm}"
    for m in ct.index:
        if m.startswith("best_single") or m == "base":
            continue
        if m not in affected:  # does not use the noised RM: identical run by construction
            rows.append({"method": m, "clean": ct[m], col: ct[m], "change": 0.0, "status": "unchanged (RM not used)"})
        elif m in nt.index:
            rows.append({"method": m, "clean": ct[m], col: nt[m], "change": nt[m] - ct[m], "status": "rerun"})
        else:
            rows.append({"method": m, "clean": ct[m], col: float("nan"), "change": float("nan"),
                         "status": "NOT RUN (time)"})
    # best single under noise: re-picked on dev, with the noised RM's dev accuracy from the noisy run
    noised = f"single:{args.noise_rm}"
    if clean.best_single and noised in nt.index:
        dev = {r["method"]: r["dev_accuracy"] for _, r in clean.table.iterrows()
               if str(r["method"]).startswith("single:")}
        dev[noised] = float(noisy.table.set_index("method").loc[noised, "dev_accuracy"])
        names = [f"single:{x.name}" for x in rc.reward_models]
        pick = max(names, key=lambda n: (dev.get(n, -1), -names.index(n)))
        acc_n = nt[pick] if pick in nt.index else ct[pick]
        acc_c = ct[f"single:{clean.best_single}"]
        rows.append({"method": f"best_single (clean: {clean.best_single}; noisy: {pick.split(':', 1)[1]})",
                     "clean": acc_c, col: acc_n, "change": acc_n - acc_c, "status": "re-picked on dev"})
    out += [f"## Noise robustness (Gaussian noise sigma={args.sigma:g} added to '{args.noise_rm}' scores)", "",
            _md(pd.DataFrame(rows)), ""]
    try:
        from banditarena.laser import selection_over_time
        from banditarena.report.figures import plot_selection_over_time

        for name, res in (("clean", clean), ("noisy", noisy)):
            df = selection_over_time(res.selections) if not res.selections.empty else None
            if df is not None and len(df):
                png = plot_selection_over_time(df, Path(args.run_dir) / f"selection_over_time_{name}.png",
                                               title=f"LASeR RM selection ({name})")
                out += [f"selection-over-time plot ({name}): {png}", ""]
    except ImportError:
        pass
    nsel = selection_frequencies(noisy.selections)
    if not nsel.empty:
        out += ["## LASeR selection frequencies under noise", "", _md(nsel.reset_index()), ""]
    if failed or skipped:
        out += [f"NOT in the tables: failed {failed}, not started before the deadline {skipped}", ""]
    out += [f"total bench wall time: {total:.0f} s ({args.workers} worker processes, {args.threads} thread(s) each)",
            ""]
    text = "\n".join(out)
    print(text)
    (Path(args.run_dir) / "report.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
