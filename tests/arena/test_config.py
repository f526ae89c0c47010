import pytest

from banditarena.config import load_recipe
from banditarena.errors import ConfigError

BASE = """
name: t
strategies:
  terse: {system_prompt: "Be terse.", max_tokens: 32}
  warm: {temperature: 0.7}
contestants:
  - {name: m, backend: openai, model: x, base_url: "http://127.0.0.1:1/v1", strategies: [terse, warm]}
  - {name: r, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-4-0314.jsonl"}
"""


def write(tmp_path, text):
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return p


def test_strategies_expand_to_contestants(tmp_path):
    r = load_recipe(write(tmp_path, BASE))
    cs = r.build_contestants()
    assert [c.name for c in cs] == ["m/terse", "m/warm", "r"]
    assert cs[0].strategy.system_prompt == "Be terse." and cs[0].strategy.max_tokens == 32
    assert cs[1].strategy.temperature == 0.7
    assert cs[2].opts["path"].endswith("gpt-4-0314.jsonl")


@pytest.mark.parametrize(
    "text, needle",
    [
        (BASE.replace("[terse, warm]", "[terse, nope]"), "unknown strategy 'nope'"),
        (BASE.replace("backend: replay", "backend: carrier-pigeon"), "contestants.1.backend"),
        (BASE + "battle: {pairs: baseline, baseline: ghost}\n", "ghost"),
        (BASE.replace(', base_url: "http://127.0.0.1:1/v1"', ""), "needs base_url"),
        (BASE + "surprise: 1\n", "surprise"),
        ("name: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_recipes_name_file_and_field(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert needle in msg and str(p) in msg and "\n" not in msg


def test_missing_recipe(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
