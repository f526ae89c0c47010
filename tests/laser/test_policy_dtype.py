"""policy.gen_dtype: generation from a cached lower-precision copy, training weights untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from banditarena.errors import ConfigError
from banditarena.laser import load_recipe
from banditarena.laser.data import arithmetic_problems
from banditarena.laser.policy import Policy
from banditarena.laser.run import recipe_fingerprint
from banditarena.types import stable_hash
from tests.laser.conftest import tiny_recipe


def test_bfloat16_generation_uses_a_copy_that_follows_new_weights(tiny_llama: Path) -> None:
    import copy

    import torch

    probs = arithmetic_problems(4, seed=0)
    pol = Policy.load(str(tiny_llama), gen_dtype="bfloat16")
    assert pol.model.dtype == torch.float32
    pol.greedy(probs, max_new_tokens=8)
    assert pol._gen is not None and pol._gen.dtype == torch.bfloat16
    assert pol.model.dtype == torch.float32  # the trained weights keep their precision

    calls = {"gen": 0, "model": 0}

    def spy(m, key):
        inner = m.generate

        def wrapped(*a, **kw):
            calls[key] += 1
            return inner(*a, **kw)
        m.generate = wrapped

    spy(pol._gen, "gen")
    spy(pol.model, "model")
    pol.sample(probs, 2, max_new_tokens=4)
    assert calls == {"gen": 1, "model": 0}  # the cached copy generates, the float32 model does not

    # new weights (as after a DPO round) drop the copy; the next generation converts the new ones
    new = copy.deepcopy(pol.model)
    with torch.no_grad():
        for p in new.parameters():
            p.add_(0.5 * torch.randn_like(p))
    pol.model = new
    assert pol._gen is None
    pol.greedy(probs, max_new_tokens=4)
    w_gen = dict(pol._gen.named_parameters())
    for name, p in new.named_parameters():
        assert torch.equal(w_gen[name], p.to(torch.bfloat16))
    assert new.dtype == torch.float32


def test_float32_generates_with_the_model_itself(tiny_llama: Path) -> None:
    pol = Policy.load(str(tiny_llama))
    pol.sample(arithmetic_problems(2, seed=0), 2, max_new_tokens=4)
    assert pol._gen is None


def test_gen_dtype_is_checked_and_bound_to_the_run(tiny_llama: Path) -> None:
    import torch

    model = torch.nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="policy.gen_dtype 'float16'"):
        Policy(model, type("Tok", (), {"pad_token": "x"})(), gen_dtype="float16")
    with pytest.raises(ConfigError, match="gen_dtype"):
        load_recipe(tiny_recipe(tiny_llama, policy={"gen_dtype": "int8"}))
    f32 = recipe_fingerprint(load_recipe(tiny_recipe(tiny_llama)))
    bf16 = recipe_fingerprint(load_recipe(tiny_recipe(tiny_llama, policy={"gen_dtype": "bfloat16"})))
    lower = recipe_fingerprint(load_recipe(tiny_recipe(tiny_llama, loop={"pair_with": "lower"})))
    assert len({f32, bf16, lower}) == 3
    # a run directory made before the fields existed (its fingerprint had neither) still resumes
    d = load_recipe(tiny_recipe(tiny_llama)).model_dump(mode="json")
    del d["policy"]["gen_dtype"]
    del d["loop"]["pair_with"]
    for key in ("paired_streams", "warmup"):
        if not d["loop"].get(key):
            d["loop"].pop(key, None)
    assert f32 == stable_hash(d)
