"""The one configuration layer: YAML recipes validated by pydantic when they load.

Every recipe (the arena's :class:`ArenaRecipe` here, the flywheel's and LASeR's in their packages) is built
from the pieces defined here, once each:

* :class:`Model` - the base of every config class: unknown fields are errors, renamed fields keep working
  for one release through :attr:`Model.renamed` (with a one-line deprecation note);
* :class:`EndpointConfig` - how to reach a model (contestants, LLM judges, reward models, the simulated user);
* :class:`StrategyConfig`, :class:`ContestantConfig` and :func:`build_contestant`, the one contestant factory;
* :class:`TrainingConfig` - what ``training.train_sft`` / ``train_dpo``, the flywheel and LASeR all take;
* :class:`PolicyConfig` - a bandit policy by its name in the bandit core's registry, parameters checked;
* :func:`load_yaml`, :func:`validate` - a recipe file to a validated model; errors are one line naming the
  file and the field.

Everything a user can get wrong is checked at load time (names, ranges, anchors, ``kmeans:K``, policy names
and parameters, files that must exist), so no user input reaches a traceback later.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from banditarena.errors import ConfigError
from banditarena.types import Contestant, Strategy

_NOTED: set[str] = set()


def deprecation_note(old: str, new: str) -> None:
    """Print (once per process) that recipe field ``old`` is now ``new``; old names work for one release."""
    if old in _NOTED:
        return
    _NOTED.add(old)
    sys.stderr.write(f"note: recipe field '{old}' is deprecated, use '{new}' (the old name works until 0.3)\n")


class Model(BaseModel):
    """Base of every config class: unknown fields are errors.

    ``renamed`` maps old field names (dotted paths below this model) to new ones; a recipe using an old name
    is accepted with a one-line deprecation note.
    """

    model_config = ConfigDict(extra="forbid")
    renamed: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _renamed_fields(cls, data: Any) -> Any:
        if not cls.renamed or not isinstance(data, dict):
            return data
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
        for old, new in cls.renamed.items():
            src = data
            *parents, leaf = old.split(".")
            for part in parents:
                src = src.get(part) if isinstance(src, dict) else None
            if not isinstance(src, dict) or leaf not in src:
                continue
            value = src.pop(leaf)
            dst = data
            *nparents, nleaf = new.split(".")
            for part in nparents:
                dst = dst.setdefault(part, {})
                if not isinstance(dst, dict):  # a ValueError: pydantic reports it as the field's error
                    raise ValueError(f"'{part}' must be a mapping")  # noqa: TRY004
            if nleaf in dst:
                raise ValueError(f"both '{old}' (deprecated) and '{new}' are given; keep '{new}'")
            dst[nleaf] = value
            deprecation_note(old, new)
        return data


def _base_dir(info: ValidationInfo) -> Path | None:
    ctx = info.context or {}
    return ctx.get("base_dir")


def check_file(value: str | None, info: ValidationInfo, what: str) -> str | None:
    """A path field: ``data:REL`` or a path relative to the recipe's folder must exist (when loading a file)."""
    if not value or (info.context or {}).get("check_files") is False:
        return value
    from banditarena.paths import resolve_path

    base = _base_dir(info)
    if base is None and not value.startswith("data:") and not Path(value).is_absolute():
        return value  # built in code: relative to the working directory, checked on use
    path = resolve_path(value, base)
    if not path.exists():
        raise ValueError(f"{what} '{value}' not found (looked at {path})")
    return value


class StrategyConfig(Model):
    name: str = "default"
    system_prompt: str | None = None
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    n: int = Field(1, ge=1)

    def build(self) -> Strategy:
        return Strategy(**self.model_dump())


class EndpointConfig(Model):
    """How to reach a model: the one endpoint config of contestants, LLM judges, reward models and the
    simulated user. ``api_key_env`` is the *name* of the env var holding the key, never the key itself."""

    backend: Literal["openai", "local", "replay"] = "local"
    model: str = "smollm2-135m-instruct"
    base_url: str | list[str] | None = None  # openai: the endpoint, or a list of replicas of the same model
    api_key_env: str | None = None
    concurrency: int = Field(8, ge=1)  # openai: requests in flight per replica
    eject_after: int = Field(3, ge=1)  # openai pool: consecutive failures that eject a replica for a cool-down
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0)
    path: str | None = None  # replay: answer file
    batch_size: int = Field(8, ge=1)  # local
    max_batch_tokens: int = Field(4096, ge=1)  # local: padded prompt tokens per batch (long prompts: smaller batches)
    device: str = "cpu"  # local: "cpu", "cuda", "cuda:1", ...

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None, info: ValidationInfo) -> str | None:
        return check_file(v, info, "replay answer file")

    @field_validator("base_url")
    @classmethod
    def _urls(cls, v: str | list[str] | None) -> str | list[str] | None:
        for u in [v] if isinstance(v, str) else v or []:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"'{u}' must start with http:// or https://")
        if isinstance(v, list):
            if not v:
                raise ValueError("an empty list of replicas")
            if len(set(v)) != len(v):
                raise ValueError("a replica is listed twice")
        return v

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
                "timeout_s": self.timeout_s, "max_retries": self.max_retries, "eject_after": self.eject_after,
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


def build_contestant(c: EndpointConfig, strategy: StrategyConfig, base_dir: Path | None, *, name: str,
                     model: str | None = None) -> Contestant:
    """The one contestant factory: a name, an endpoint and a strategy (``model`` overrides the endpoint's, e.g. a
    new checkpoint of the flywheel's target)."""
    opts = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in c.options(base_dir).items()
                        if v is not None))  # hashable: a replica list becomes a tuple
    return Contestant(name, c.backend, model or c.model, strategy.build(), opts)


class PolicyConfig(Model):
    """A bandit policy by its name in the bandit core's registry (``bandits.POLICIES``) and its parameters."""

    policy: str = "thompson"
    params: dict[str, Any] = {}
    #: which kind of policy a field accepts: context-free (False), contextual (True) or both (None)
    contextual: ClassVar[bool | None] = False

    @model_validator(mode="after")
    def _known(self) -> PolicyConfig:
        from banditarena.bandits import BanditInputError, make_policy, policy_names

        names = policy_names(self.contextual)
        if self.policy not in names:
            raise ValueError(f"unknown bandit policy '{self.policy}' (known: {', '.join(names)})")
        try:  # the parameters are checked by building the policy once
            extra = {"dim": 1} if self.policy in policy_names(True) and "dim" not in self.params else {}
            make_policy(self.policy, 2, seed=0, **extra, **self.params)
        except BanditInputError as exc:
            raise ValueError(str(exc)) from None
        return self


class TrainingConfig(Model):
    """Fine-tuning settings: what ``training.train_sft`` / ``train_dpo``, the flywheel and LASeR all take.

    Recipes give their own defaults (the flywheel trains SFT then DPO; LASeR trains DPO + NLL only).
    """

    enabled: bool = True  # flywheel: false = battle and mine data only (e.g. a replayed target)
    sft: bool = True
    dpo: bool = True
    lora: bool = True
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    epochs: float = Field(1.0, gt=0)
    dpo_epochs: float | None = Field(None, gt=0)  # default: epochs
    learning_rate: float = Field(2e-4, gt=0)  # SFT
    dpo_learning_rate: float = Field(5e-5, gt=0)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(512, ge=16)
    beta: float = Field(0.1, gt=0)  # DPO temperature
    nll_alpha: float = Field(0.0, ge=0)  # weight of the NLL term on the chosen answer (RPO / LASeR)
    max_steps: int = -1  # > 0: stop after this many optimiser steps
    completion_only: bool = True  # SFT loss on the final answer only (False: the whole dialogue)
    device: str = "auto"  # auto (the GPU when torch sees one), cpu, cuda
    # inprocess: TRL in this process; accelerate: `accelerate launch --config_file accelerate_config` runs the
    # same training as a separate process over the exported rows (DDP, FSDP or DeepSpeed ZeRO, any GPU count)
    launcher: Literal["inprocess", "accelerate"] = "inprocess"
    accelerate_config: str | None = None

    @field_validator("accelerate_config")
    @classmethod
    def _accelerate_config(cls, v: str | None, info: ValidationInfo) -> str | None:
        check_file(v, info, "accelerate config file")
        base = _base_dir(info)
        if v and base is not None:  # the launch runs from anywhere: keep the file's full path
            from banditarena.paths import resolve_path

            return str(resolve_path(v, base))
        return v

    @model_validator(mode="after")
    def _launcher(self) -> TrainingConfig:
        if self.launcher == "accelerate" and not self.accelerate_config:
            raise ValueError("launcher 'accelerate' needs accelerate_config (an accelerate config YAML file)")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device '{v}': use auto, cpu or cuda")
        return v


class PromptsConfig(Model):
    source: str = "arena_hard"  # a named set (mt_bench, arena_hard, ...), a JSONL/Parquet path, or data:REL
    limit: int | None = Field(None, ge=1)
    sample: Literal["first", "random"] = "first"
    max_chars: int | None = Field(None, ge=1)  # drop prompts whose user turns total more characters (before limit)
    ids: list[str] | None = None
    reference_from: str | None = None  # a replay answer file whose answers become Prompt.reference

    @field_validator("source")
    @classmethod
    def _source(cls, v: str, info: ValidationInfo) -> str:
        if v.startswith("data:") or v.endswith((".jsonl", ".json", ".parquet", ".ndjson")) or "/" in v:
            return check_file(v, info, "prompts file") or v
        return v

    @field_validator("reference_from")
    @classmethod
    def _reference(cls, v: str | None, info: ValidationInfo) -> str | None:
        return check_file(v, info, "reference answer file")


class JudgeConfig(Model):
    kind: Literal["llm", "verifier", "similarity", "learned", "recorded", "cascade"] = "similarity"
    name: str | None = None
    endpoint: EndpointConfig | None = None  # llm judge's backend
    verdict: bool = False  # llm: also ask for the five-level Arena-Hard verdict
    temperature: float = 0.0
    max_tokens: int | None = Field(None, ge=1)  # llm: None = the judge's own default
    # learned (see banditarena.judges.configured): artifact path prefix, and what it must have been trained with
    artifact: str | None = None
    features: list[str] | None = None
    embedder: str | None = None
    paths: list[str] | None = None  # recorded: annotation (.json) or judgment (.jsonl) files or folders
    cheap: JudgeConfig | None = None  # cascade
    expensive: JudgeConfig | None = None  # cascade
    threshold: float | None = Field(None, ge=0)  # cascade: decide cheaply at confidence >= threshold

    @model_validator(mode="after")
    def _check(self) -> JudgeConfig:
        if self.kind == "llm" and self.endpoint is None:
            raise ValueError("judge kind 'llm' needs endpoint (backend, model, base_url...)")
        if self.kind == "recorded" and not self.paths:
            raise ValueError("judge kind 'recorded' needs paths (annotation or judgment files)")
        if self.kind == "cascade":
            if self.cheap is None or self.expensive is None or self.threshold is None:
                raise ValueError("judge kind 'cascade' needs cheap, expensive and threshold")
            if "cascade" in (self.cheap.kind, self.expensive.kind):
                raise ValueError("a cascade's cheap and expensive judges cannot be cascades")
        return self


def check_outcomes(outcomes: str, judge: JudgeConfig, field: str) -> None:
    """``graded`` outcomes need a judge that gives probabilities: one line naming ``field`` otherwise."""
    if outcomes != "graded":
        return
    kind = judge.kind
    if kind == "cascade" and judge.cheap is not None and judge.cheap.kind != "learned":
        raise ValueError(f"{field}: 'graded' needs a cascade whose cheap judge is 'learned' (it is "
                         f"'{judge.cheap.kind}'); use outcomes: winner or auto")
    if kind not in GRADED_JUDGES:
        raise ValueError(f"{field}: 'graded' needs a judge that gives P(A beats B) ({', '.join(GRADED_JUDGES)}); "
                         f"judge.kind '{kind}' gives only scores or verdicts: use outcomes: winner or auto")


class BattleConfig(Model):
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
    if not math.isfinite(rating):
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


OutcomeModel = Literal["auto", "graded", "winner"]
"""How battles become ratings: ``graded`` fits ``P(A beats B)`` from a judge that gives probabilities (the
learned judge, recorded AlpacaEval annotations, a cascade's cheap learned side); ``winner`` fits
win/loss/tie; ``auto`` (default) is graded where the run's battles have graded outcomes."""

GRADED_JUDGES = ("learned", "recorded", "cascade")
"""Judge kinds that can give graded outcomes (``recorded``: AlpacaEval annotation files; ``cascade``: on the
pairs its cheap learned judge decides)."""


class LeaderboardConfig(Model):
    bootstrap: int = Field(100, ge=0)
    anchor: str | None = None  # "MODEL=RATING" or None (mean 1000)
    outcomes: OutcomeModel = "auto"

    @field_validator("anchor")
    @classmethod
    def _anchor(cls, v: str | None) -> str | None:
        if v:
            anchor_value(v)
        return v


class ArenaRecipe(Model):
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
        check_outcomes(self.leaderboard.outcomes, self.judge, "leaderboard.outcomes")
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
            if c.strategies:
                for s in c.strategies:
                    sc = self._strategy(s)
                    out.append(build_contestant(c, sc, self.base_dir, name=f"{c.name}/{sc.name}"))
            else:
                out.append(build_contestant(c, self._strategy(c.strategy), self.base_dir, name=c.name))
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


def validate(model: type[BaseModel], data: dict[str, Any], path: str | Path, *, check_files: bool = True,
             **extra: Any) -> Any:
    """``model`` from ``data`` (read from ``path``); paths in it resolve against ``base_dir`` when given and must
    exist (``check_files=False`` checks everything else, e.g. an example recipe for another machine).

    Raises :class:`ConfigError`: one line naming the file and the first bad field."""
    fields = {k: v for k, v in extra.items() if k in model.model_fields}
    context = {"base_dir": extra.get("base_dir"), "check_files": check_files}
    try:
        return model.model_validate({**data, **fields}, context=context)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(str(path), exc)) from exc


def load_recipe(path: str | Path) -> ArenaRecipe:
    """Load and validate an arena recipe; errors name the file and the field."""
    data = load_yaml(path)
    return validate(ArenaRecipe, data, path, base_dir=Path(path).resolve().parent)
