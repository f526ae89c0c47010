"""The flywheel recipe (YAML, validated by pydantic)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from banditarena.config import (
    ContestantConfig,
    EndpointConfig,
    JudgeConfig,
    Model,
    PolicyConfig,
    PromptsConfig,
    StrategyConfig,
    TrainingConfig,
    build_contestant,
    load_yaml,
    validate,
)
from banditarena.flywheel.data import SelectionConfig
from banditarena.safety import SafetyConfig
from banditarena.types import Contestant


class PromptPolicy(Model):
    """How the prompt inside the chosen cluster is picked (see flywheel.allocation.PromptPicker)."""

    policy: Literal["uniform", "thompson"] = "thompson"
    prior_strength: float = Field(1.0, gt=0)  # weight of the cluster's mean, in pseudo-battles


class BanditConfig(Model):
    reward: Literal["yield", "progress"] = "yield"
    clusters: PolicyConfig = PolicyConfig()  # any context-free policy of the bandit core, by name
    opponents: PolicyConfig = PolicyConfig()
    strategies: PolicyConfig = PolicyConfig()
    prompts: PromptPolicy = PromptPolicy()
    batch: int = Field(8, ge=1)  # battles chosen per bandit round (a batched select)


class ServeConfig(Model):
    """How each new checkpoint of the target is served during its battles and evaluation: a command template
    (vLLM, SGLang, any OpenAI-compatible server) with ``{checkpoint}``, ``{port}``, ``{served_name}`` and
    ``{python}`` filled in; the flywheel starts it, waits until ``/v1/models`` answers, battles through it
    (the target's ``concurrency``, ``timeout_s``, ``max_retries``) and stops it."""

    command: str
    ready_timeout_s: float = Field(600.0, gt=0)

    @field_validator("command")
    @classmethod
    def _command(cls, v: str) -> str:
        import shlex

        try:
            parts = shlex.split(v)
        except ValueError as exc:
            raise ValueError(f"cannot split the command: {exc}") from None
        if not parts:
            raise ValueError("an empty command")
        if not any("{port}" in p for p in parts) or not any("{checkpoint}" in p for p in parts):
            raise ValueError("the command must use {port} and {checkpoint}")
        return v


class TargetConfig(ContestantConfig):
    """The target: a contestant (a local checkpoint to train) and, optionally, how to serve each checkpoint."""

    serve: ServeConfig | None = None


class UserSimulatorConfig(Model):
    """Simulated user that continues a conversation; its persona is a strategy arm."""

    endpoint: EndpointConfig = EndpointConfig()
    personas: dict[str, str] = Field(default_factory=dict)
    turns: int = Field(2, ge=2)
    max_tokens: int = 96


class EvalConfig(Model):
    testset: PromptsConfig = PromptsConfig()
    opponents: list[str] | None = None  # default: every opponent
    bootstrap: int = Field(200, ge=0)
    # each new checkpoint also battles the earlier ones (their answers are stored: judge calls only)
    snapshots: bool = True
    # the Elo scale's fixed point: an opponent's name (that model at 1000), or None (mean of all at 1000)
    anchor: str | None = None
    # measures the training data was not mined with: held-out problems with checkable answers (each prompt's
    # reference, e.g. GSM8K's "#### n"), scored by exact final-answer accuracy; and further judges that re-judge
    # the same evaluation answers (judge calls only), each with its own gain over iteration 0
    verifiable: PromptsConfig | None = None
    judges: dict[str, JudgeConfig] = Field(default_factory=dict)


class FlywheelRecipe(Model):
    name: str = "flywheel"
    seed: int = 0
    target: TargetConfig
    opponents: list[ContestantConfig]
    strategies: dict[str, StrategyConfig] = Field(default_factory=lambda: {"default": StrategyConfig()})
    pool: PromptsConfig = PromptsConfig()
    cluster_field: str = "cluster"  # a Prompt field (cluster/category), or "kmeans:K"
    judge: JudgeConfig = JudgeConfig()
    iterations: int = Field(2, ge=1)
    battles_per_iteration: int = Field(64, ge=1)
    bandit: BanditConfig = BanditConfig()
    selection: SelectionConfig = SelectionConfig()
    safety: SafetyConfig = SafetyConfig()  # the scorer of the selection's safety screen (selection.safety: on/off)
    training: TrainingConfig = TrainingConfig()
    user_simulator: UserSimulatorConfig | None = None
    eval: EvalConfig = EvalConfig()
    base_dir: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _check(self) -> FlywheelRecipe:
        names = [o.name for o in self.opponents]
        if not names:
            raise ValueError("at least one opponent is needed")
        if len(set(names)) != len(names) or self.target.name in names:
            raise ValueError(f"contestant names must be unique (target '{self.target.name}', opponents {names})")
        for n in self.eval.opponents or []:
            if n not in names:
                raise ValueError(f"eval.opponents: unknown opponent '{n}' (known: {names})")
        if self.eval.anchor is not None and self.eval.anchor not in (self.eval.opponents or names):
            raise ValueError(f"eval.anchor: '{self.eval.anchor}' is not an evaluation opponent "
                             f"(known: {self.eval.opponents or names})")
        if self.selection.distill_from is not None and self.selection.distill_from not in names:
            raise ValueError(f"selection.distill_from: unknown opponent '{self.selection.distill_from}' "
                             f"(known: {names})")
        for name in self.eval.judges:
            if name in ("eval", "judge"):
                raise ValueError(f"eval.judges: '{name}' is reserved; name the judge otherwise")
        for o in self.opponents:
            # "default" is the built-in default strategy unless the recipe defines one of that name
            if isinstance(o.strategy, str) and o.strategy != "default" and o.strategy not in self.strategies:
                raise ValueError(f"opponents: '{o.name}' names unknown strategy '{o.strategy}' "
                                 f"(known: {sorted(self.strategies)})")
        if self.cluster_field.startswith("kmeans:"):
            k = self.cluster_field.split(":", 1)[1]
            if not k.isdigit() or int(k) < 2:
                raise ValueError(f"cluster_field '{self.cluster_field}': K in kmeans:K must be a whole number >= 2")
        elif self.cluster_field not in ("cluster", "category"):
            raise ValueError(f"cluster_field '{self.cluster_field}': use cluster, category or kmeans:K")
        if self.target.backend == "replay" and self.training.enabled:
            raise ValueError("a replay target cannot be retrained: set training.enabled: false")
        if self.target.serve is not None and self.target.backend != "local":
            raise ValueError("target.serve serves local checkpoints: the target's backend must be 'local'")
        if self.user_simulator and self.user_simulator.personas:
            clash = set(self.user_simulator.personas) & set(self.strategies)
            if clash:
                raise ValueError(f"persona names clash with strategy names: {sorted(clash)}")
        return self

    def opponent_contestants(self) -> list[Contestant]:
        out = []
        for c in self.opponents:
            strat = c.strategy if isinstance(c.strategy, StrategyConfig) else self.strategies.get(c.strategy, StrategyConfig())
            out.append(build_contestant(c, strat, self.base_dir, name=c.name))
        return out


def load_flywheel_recipe(path: str | Path) -> FlywheelRecipe:
    data = load_yaml(path)
    return validate(FlywheelRecipe, data, path, base_dir=Path(path).resolve().parent)
