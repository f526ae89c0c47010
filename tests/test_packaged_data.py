"""The public files the demos need ship with the package; ``data:`` paths fall back to them, file by file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from banditarena import paths

DEMO_FILES = ["arena_hard_v0.1/question.jsonl", "arena_hard_v0.1/model_answer/gpt-4-0314.jsonl",
              "arena_hard_v0.1/model_answer/gpt-4-0613.jsonl",
              "arena_hard_v0.1/model_answer/gpt-3.5-turbo-0125.jsonl"]
RECIPES = Path(paths.__file__).parent / "recipes"


def test_every_data_path_of_the_demo_recipes_is_packaged_with_its_license():
    used = set()
    for name in ("arena-demo.yaml", "flywheel-demo.yaml"):
        used |= {w.split("data:", 1)[1] for w in (RECIPES / name).read_text().split() if w.startswith("data:")}
    assert used and used <= set(DEMO_FILES)
    for rel in DEMO_FILES:
        assert (paths.PACKAGED_DATA / rel).stat().st_size > 100_000
    notice = (paths.PACKAGED_DATA / "NOTICE.md").read_text()
    assert "Apache" in notice and all(Path(r).name in notice for r in DEMO_FILES)
    assert "Apache License" in (paths.PACKAGED_DATA / "LICENSE-APACHE-2.0").read_text()


def test_packaged_copies_are_identical_to_the_shared_files():
    shared = paths.data_dir()
    if shared == paths.PACKAGED_DATA or not (shared / DEMO_FILES[0]).exists():
        pytest.skip(f"shared data not found at {shared}: nothing to compare the packaged copies with")
    for rel in DEMO_FILES:
        a, b = (shared / rel).read_bytes(), (paths.PACKAGED_DATA / rel).read_bytes()
        assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest(), rel


def test_data_paths_fall_back_to_the_packaged_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITARENA_DATA", str(tmp_path))        # a data folder without Arena-Hard
    (tmp_path / "mine.jsonl").write_text("{}\n")
    assert paths.resolve_path("data:mine.jsonl") == tmp_path / "mine.jsonl"        # the shared folder first
    assert paths.resolve_path("data:" + DEMO_FILES[1]) == paths.PACKAGED_DATA / DEMO_FILES[1]
    assert paths.resolve_path("data:gsm8k/train.jsonl") == tmp_path / "gsm8k" / "train.jsonl"  # error names it


def test_the_demo_prompts_load_where_no_shared_data_is_visible(tmp_path):
    """A fresh interpreter that sees no ../shared (cwd in an empty folder, no BANDITARENA_DATA, the package
    imported from this checkout): the demo's recipes load and their prompt pools attach the packaged answers."""
    script = textwrap.dedent("""
        import sys
        from unittest import mock
        from pathlib import Path
        from banditarena import paths
        real = Path.is_dir
        with mock.patch.object(Path, "is_dir", lambda p: False if "shared" in str(p) else real(p)):
            assert paths.data_dir() == paths.PACKAGED_DATA, paths.data_dir()
            from banditarena.prompts.loaders import load_prompts
            from banditarena.paths import resolve_path
            prompts = load_prompts("arena_hard")
            n = len(prompts)
            assert n == 500, n
            ref = resolve_path("data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl")
            assert ref.is_relative_to(paths.PACKAGED_DATA), ref
            print("ok", n)
    """)
    env = {k: v for k, v in os.environ.items() if k != "BANDITARENA_DATA"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["ok", "500"]
