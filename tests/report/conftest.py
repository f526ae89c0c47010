"""Fixtures for the report tests: realistic synthetic arena data and a headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import _report_synth as synth
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("BANDITARENA_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def battles():
    return synth.simulate_battles(seed=0)


@pytest.fixture(scope="session")
def leaderboard(battles):
    return synth.leaderboard(battles, seed=0)


@pytest.fixture(scope="session")
def winrate(battles):
    return synth.winrate_matrix(battles)


@pytest.fixture()
def audit():
    return synth.audit()


@pytest.fixture(scope="session")
def decisions():
    return synth.decisions(seed=0)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Path of a headless Chromium; runs scripts/ensure-chromium.sh (Debian package) when it is missing."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    script = ROOT / "scripts" / "ensure-chromium.sh"
    bash = shutil.which("bash") or "/bin/bash"
    try:
        proc = subprocess.run([bash, str(script)], check=False, capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{script} timed out installing Chromium; install the Debian package 'chromium' by hand")
    if proc.returncode != 0 or not CHROMIUM.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.fail(f"Chromium is missing at {CHROMIUM} and {script} failed (rc={proc.returncode}): {last}")
    return CHROMIUM
