"""Project-wide test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random llama checkpoint with SmolLM2's tokenizer (fast to load, generate and train)."""
    from tests.support.tiny import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


# --- the shared data sets -------------------------------------------------------------------------------------
# Tests that need a large public set under ../shared/data skip when it is absent (a plain clone), with a reason
# that names it ("shared data ..." / "../shared/data ..."). Where the set must be there (CI=true), such a skip
# is turned into a failure, so a missing data set can never pass unnoticed.
SHARED_DATA_SKIP = ("shared data", "../shared")


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if not (_ci() and report.skipped and isinstance(report.longrepr, tuple)):
        return
    reason = str(report.longrepr[2])
    if any(k in reason for k in SHARED_DATA_SKIP) and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"CI=true but a data set is missing: {reason}"
