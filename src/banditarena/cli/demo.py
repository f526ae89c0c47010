"""``banditarena demo``: the main job on the embedded default, offline on CPU."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path


def packaged_recipe(name: str) -> Path:
    """Path of a recipe shipped inside the package (``banditarena/recipes/NAME``)."""
    return Path(str(resources.files("banditarena") / "recipes" / name))


def run_arena_demo(run_dir: str | Path, *, progress: bool = True) -> Path:
    """Offline arena: SmolLM2 strategies vs replayed GPT-4/GPT-3.5 answers; leaderboard + report."""
    from banditarena.arena.service import run_battles
    from banditarena.arena.style import leaderboard_with_style
    from banditarena.cli.app import print_leaderboard
    from banditarena.config import load_recipe
    from banditarena.report.run import write_run_report

    t0 = time.perf_counter()
    recipe = load_recipe(packaged_recipe("arena-demo.yaml"))
    result, store = run_battles(recipe, run_dir, progress=progress)
    print(f"{len(result.battles)} battles, {result.n_invalid} invalid, {result.n_inconsistent} inconsistent orders")
    print_leaderboard(leaderboard_with_style(store, bootstrap=recipe.leaderboard.bootstrap, seed=recipe.seed),
                      f"Offline arena (judge: {store.get_meta('judge')})")
    path = write_run_report(run_dir, bootstrap=recipe.leaderboard.bootstrap, seed=recipe.seed)
    print(f"report: {path}  ({time.perf_counter() - t0:.0f} s)")
    return path


def run_flywheel_demo(run_dir: str | Path, *, progress: bool = True) -> Path:
    """Arena Learning on the embedded default: bandit-allocated battles, SFT+DPO with TRL, Elo per iteration."""
    from banditarena.flywheel.loop import run_flywheel
    from banditarena.flywheel.recipe import load_flywheel_recipe
    from banditarena.flywheel.report import print_table, write_flywheel_report

    t0 = time.perf_counter()
    recipe = load_flywheel_recipe(packaged_recipe("flywheel-demo.yaml"))
    result = run_flywheel(recipe, run_dir, progress=progress)
    print_table(result)
    path = write_flywheel_report(run_dir, result)
    print(f"report: {path}  ({time.perf_counter() - t0:.0f} s)")
    return path
