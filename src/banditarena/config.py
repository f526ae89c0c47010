"""YAML recipes validated by pydantic. A recipe is the unit users share; every CLI flag has a field here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from banditarena.errors import ConfigError
from banditarena.types import Contestant, Strategy


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrategyConfig(_Model):
    name: str = "default"
    system_prompt: str | None = None
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    n: int = Field(1, ge=1)

    def build(self) -> Strategy:
        return Strategy(**self.model_dump())


class EndpointConfig(_Model):
    """Backend options. ``api_key_env`` is the *name* of the env var holding the key, never the key itself."""

    backend: Literal["openai", "local", "replay"] = "local"
    model: str = "smollm2-135m-instruct"
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0)
    path: str | None = None  # replay: answer file
    batch_size: int = Field(8, ge=1)  # local
    max_batch_tokens: int = Field(4096, ge=1)  # local: padded prompt tokens per batch (long prompts: smaller batches)
    device: str = "cpu"  # local: "cpu", "cuda", "cuda:1", ...

    @model_validator(mode="after")
    def _check(self) -> EndpointConfig:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url")
        if self.backend == "replay" and not self.path:
            raise ValueError("backend 'replay' needs path (an answer file)")
        return self

    def options(self, base: Path | None) -> dict[str, Any]:
        from banditarena.paths import resolve_path

        if self.backend == "openai":
            return {
                "base_url": self.base_url, "api_key_env": self.api_key_env, "concurrency": self.concurrency,
                "timeout_s": self.timeout_s, "max_retries": self.max_retries,
            }
        if self.backend == "replay":
            return {"path": str(resolve_path(self.path or "", base))}
        return {"batch_size": self.batch_size, "device": self.device, "max_batch_tokens": self.max_batch_tokens}


class ContestantConfig(EndpointConfig):
    name: str
    strategy: StrategyConfig | str = "default"  # inline, or the name of an entry of recipe.strategies
    strategies: list[StrategyConfig | str] | None = None  # expands into one contestant per strategy

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("empty contestant name")
        return v


class PromptsConfig(_Model):
    source: str = "arena_hard"  # a named set (mt_bench, arena_hard, ...), a JSONL/Parquet path, or data:REL
    limit: int | None = Field(None, ge=1)
    sample: Literal["first", "random"] = "first"
    max_chars: int | None = Field(None, ge=1)  # drop prompts whose user turns total more characters (before limit)
    ids: list[str] | None = None
    reference_from: str | None = None  # a replay answer file whose answers become Prompt.reference


class JudgeConfig(_Model):
    kind: Literal["llm", "verifier", "similarity"] = "similarity"
    name: str | None = None
    endpoint: EndpointConfig | None = None  # llm judge's backend
    verdict: bool = False  # llm: also ask for the five-level Arena-Hard verdict
    temperature: float = 0.0
    max_tokens: int = 512

    @model_validator(mode="after")
    def _check(self) -> JudgeConfig:
        if self.kind == "llm" and self.endpoint is None:
            raise ValueError("judge kind 'llm' needs endpoint (backend, model, base_url...)")
        return self


class BattleConfig(_Model):
    pairs: Literal["all", "baseline"] = "all"
    baseline: str | None = None
    max_in_flight: int = Field(256, ge=1)

    @model_validator(mode="after")
    def _check(self) -> BattleConfig:
        if self.pairs == "baseline" and not self.baseline:
            raise ValueError("pairs 'baseline' needs baseline (a contestant name)")
        return self


def anchor_value(anchor: str) -> tuple[str, float]:
    """``MODEL=RATING`` -> (model, rating); ValueError with a one-line reason for anything else."""
    name, sep, value = anchor.rpartition("=")
    if not sep or not name.strip():
        raise ValueError(f"'{anchor}': expected MODEL=RATING, e.g. gpt-4-0314=1000")
    try:
        rating = float(value)
    except ValueError:
        raise ValueError(f"'{anchor}': the rating '{value}' is not a number (expected MODEL=RATING)") from None
    if rating != rating or rating in (float("inf"), float("-inf")):
        raise ValueError(f"'{anchor}': the rating must be a finite number")
    return name.strip(), rating


def parse_anchor(anchor: str | None, what: str = "--anchor") -> tuple[str, float] | None:
    """:func:`anchor_value` for user input: None passes; a bad value is one :class:`ConfigError` line."""
    if not anchor:
        return None
    try:
        return anchor_value(anchor)
    except ValueError as exc:
        raise ConfigError(f"{what} {exc}") from None


class LeaderboardConfig(_Model):
    bootstrap: int = Field(100, ge=0)
    anchor: str | None = None  # "MODEL=RATING" or None (mean 1000)

    @field_validator("anchor")
    @classmethod
    def _anchor(cls, v: str | None) -> str | None:
        if v:
            anchor_value(v)
        return v


class ArenaRecipe(_Model):
    name: str = "arena"
    seed: int = 0
    prompts: PromptsConfig = PromptsConfig()
    strategies: dict[str, StrategyConfig] = {}
    contestants: list[ContestantConfig]
    judge: JudgeConfig = JudgeConfig()
    battle: BattleConfig = BattleConfig()
    leaderboard: LeaderboardConfig = LeaderboardConfig()

    # set by load_recipe: the folder relative paths resolve against
    base_dir: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _check(self) -> ArenaRecipe:
        names = [c.name for c in self.build_contestants()]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate contestant names: {sorted(dup)}")
        if len(names) < 2:
            raise ValueError("an arena needs at least two contestants")
        if self.battle.pairs == "baseline" and self.battle.baseline not in names:
            raise ValueError(f"battle.baseline '{self.battle.baseline}' is not a contestant (known: {names})")
        return self

    def _strategy(self, s: StrategyConfig | str) -> StrategyConfig:
        if isinstance(s, StrategyConfig):
            return s
        if s == "default":
            return self.strategies.get("default", StrategyConfig())
        if s not in self.strategies:
            raise ValueError(f"unknown strategy '{s}' (known: {sorted(self.strategies) or 'none defined'})")
        return self.strategies[s].model_copy(update={"name": s})

    def build_contestants(self) -> list[Contestant]:
        out = []
        for c in self.contestants:
            opts = tuple(sorted((k, v) for k, v in c.options(self.base_dir).items() if v is not None))
            if c.strategies:
                for s in c.strategies:
                    sc = self._strategy(s)
                    out.append(Contestant(f"{c.name}/{sc.name}", c.backend, c.model, sc.build(), opts))
            else:
                out.append(Contestant(c.name, c.backend, c.model, self._strategy(c.strategy).build(), opts))
        return out


def _format_validation_error(path: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    msg = err.get("msg", "invalid").removeprefix("Value error, ")
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: field '{loc}': {msg}{more}" if loc else f"{path}: {msg}{more}"


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: recipe file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a recipe must be a YAML mapping")
    return data


def validate(model: type[BaseModel], data: dict[str, Any], path: str | Path, **extra: Any) -> Any:
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(str(path), exc)) from exc


def load_recipe(path: str | Path) -> ArenaRecipe:
    """Load and validate an arena recipe; errors name the file and the field."""
    data = load_yaml(path)
    return validate(ArenaRecipe, data, path, base_dir=Path(path).resolve().parent)
