"""The codebase's shape, checked: layer contracts (import-linter), no private name used across packages, and
the configuration layer's promises (old recipe keys keep working with a one-line note)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "banditarena"


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_private_name_is_imported_across_packages() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("banditarena"):
                if _package(node.module) == _package(module):
                    continue
                bad += [f"{module}: from {node.module} import {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad


def test_layer_contracts_hold() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.fail("import-linter is not installed: run `make test` (it installs the test extra)", pytrace=False)
    out = subprocess.run([str(exe)], check=False, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:]


def test_old_recipe_keys_work_with_a_one_line_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from banditarena import config
    from banditarena.laser.recipe import load_recipe

    config._NOTED.discard("loop.lr")
    rec = load_recipe({"reward_models": [{"name": "v", "kind": "verifier"}],
                       "loop": {"lr": 3e-4, "batch_size": 2}})
    assert rec.training.dpo_learning_rate == 3e-4 and rec.loop.batch_size == 2
    err = capsys.readouterr().err.strip()
    assert err == "note: recipe field 'loop.lr' is deprecated, use 'training.dpo_learning_rate' (the old name works until 0.3)"
    with pytest.raises(config.ConfigError, match="both 'loop.beta' .deprecated. and 'training.beta'"):
        load_recipe({"reward_models": [{"name": "v", "kind": "verifier"}], "loop": {"beta": 0.2},
                     "training": {"beta": 0.3}})
    old_rm = load_recipe({"reward_models": [{"name": "j", "kind": "llm_judge",
                                             "backend": {"kind": "openai", "model": "m", "base_url": "http://x/v1"}}]})
    assert old_rm.reward_models[0].endpoint.base_url == "http://x/v1"


def test_every_shipped_recipe_validates() -> None:
    """The recipes in the package are valid against today's schema (paths of example set-ups for other
    machines aside: those are checked on the machine that runs them)."""
    from banditarena.config import ArenaRecipe, load_yaml, validate
    from banditarena.flywheel.recipe import FlywheelRecipe
    from banditarena.laser.recipe import LaserRecipe

    recipes = sorted((SRC / "recipes").glob("*.yaml"))
    checked = []
    for path in recipes:
        data = load_yaml(path)
        if "distributed_type" in data:  # an accelerate config, used by a recipe
            continue
        model = (LaserRecipe if "reward_models" in data else FlywheelRecipe if "target" in data
                 else ArenaRecipe if "contestants" in data else None)
        if model is None:
            continue  # another kind of recipe (checked by its own package's tests)
        validate(model, data, path, check_files=False, base_dir=path.parent)
        checked.append(path.name)
    assert {"arena-demo.yaml", "flywheel-demo.yaml", "flywheel-vllm.yaml", "laser-arith.yaml"} <= set(checked)
