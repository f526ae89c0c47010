"""Training through `accelerate launch`: 2 processes (gloo on CPU) train like one, and a failed launch is one
line naming its log."""

from __future__ import annotations

from pathlib import Path

import pytest

from banditarena.config import TrainingConfig
from banditarena.errors import ConfigError, ModelError
from banditarena.training import train

CFG2 = Path(__file__).resolve().parents[1] / "support" / "accelerate-2proc.yaml"
ROWS = [{"messages": [{"role": "user", "content": f"What is {i} plus 1?"}, {"role": "assistant", "content": f"{i + 1}"}]}
        for i in range(16)]


@pytest.mark.slow
def test_two_accelerate_processes_train_like_one(tiny_llama: Path, tmp_path: Path) -> None:
    from banditarena.models import LocalBackend
    from banditarena.models.base import ChatRequest
    from banditarena.types import Strategy

    cfg = TrainingConfig(epochs=2, learning_rate=2e-2, batch_size=4, max_length=64)
    one = train("sft", str(tiny_llama), ROWS, tmp_path / "one", cfg, seed=0)
    two = train("sft", str(tiny_llama), ROWS, tmp_path / "two",
                cfg.model_copy(update={"launcher": "accelerate", "accelerate_config": str(CFG2)}), seed=0,
                log_path=tmp_path / "logs" / "sft.log")
    assert len(two.losses) == len(one.losses) == 8  # 16 rows / global batch 4 x 2 epochs, the same steps
    assert abs(two.losses[-1] - one.losses[-1]) <= 0.02 * abs(one.losses[-1])
    assert (tmp_path / "logs" / "sft.log").read_text().startswith("$ ")  # the launch's output is kept
    # the checkpoint has the in-process format: a local backend serves it
    (c,) = LocalBackend(str(two.path)).complete([ChatRequest("p", 0, [{"role": "user", "content": "hi"}])],
                                                 Strategy(max_tokens=4))
    assert c.ok


def test_a_failed_launch_names_its_log_and_a_missing_config_is_a_recipe_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("distributed_type: NOT_A_TYPE\nnum_processes: 2\n")
    cfg = TrainingConfig(launcher="accelerate", accelerate_config=str(bad), batch_size=2)
    with pytest.raises(ModelError) as err:
        train("sft", str(tmp_path / "no-model"), ROWS[:2], tmp_path / "out", cfg, log_path=tmp_path / "l.log")
    msg = str(err.value)
    assert "\n" not in msg and "accelerate launch of sft training failed" in msg and str(tmp_path / "l.log") in msg
    with pytest.raises(ValueError, match="accelerate_config"):
        TrainingConfig(launcher="accelerate")
    from banditarena.config import validate

    with pytest.raises(ConfigError, match="accelerate config file 'missing.yaml' not found"):
        validate(TrainingConfig, {"launcher": "accelerate", "accelerate_config": "missing.yaml"}, tmp_path / "r.yaml",
                 base_dir=tmp_path)
