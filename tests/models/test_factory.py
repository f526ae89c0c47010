"""make_backend / backend_for: kinds, options and their errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from banditarena.errors import ConfigError, ModelError
from banditarena.models import (
    LocalBackend,
    OpenAIBackend,
    ReplayBackend,
    backend_for,
    make_backend,
)
from banditarena.types import Contestant
from tests.models.test_replay import AH


def test_make_each_kind() -> None:
    o = make_backend("openai", "m", base_url="http://127.0.0.1:8000/v1", concurrency=2)
    assert isinstance(o, OpenAIBackend) and o.concurrency == 2
    assert isinstance(make_backend("local", "smollm2", batch_size=2), LocalBackend)
    r = backend_for(Contestant("g4", "replay", "gpt-4-0314", options=(("path", str(AH)),)))
    assert isinstance(r, ReplayBackend) and r.files == [AH / "gpt-4-0314.jsonl"]


def test_unknown_kind_and_bad_options_are_one_line_errors() -> None:
    with pytest.raises(ModelError) as exc:
        make_backend("vllm-magic", "m")
    assert "vllm-magic" in str(exc.value) and "openai" in str(exc.value)
    with pytest.raises(ConfigError, match="unknown option 'batch'"):
        make_backend("local", "smollm2", batch=3)
    with pytest.raises(ConfigError, match="missing option 'base_url'"):
        make_backend("openai", "m")
    with pytest.raises(ConfigError, match="missing option 'path'"):
        make_backend("replay", "m")


def test_importing_models_does_not_import_torch() -> None:
    code = "import sys, banditarena.models; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
