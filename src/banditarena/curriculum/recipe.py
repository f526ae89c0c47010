"""The tutoring recipe (``banditarena tutor simulate|serve RECIPE.yaml``): a pydantic model validated from YAML.

Everything is checked at load: the curriculum compiles, every population's profiles exist, every policy
builds with its parameters. Errors name the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from banditarena.config import EndpointConfig, Model
from banditarena.errors import ConfigError

# the tutoring policies: the curriculum's own (zpdes, expert, mastery) and the bandit core's by their
# registry names (random is the core's "uniform")
POLICY_KIND = Literal["zpdes", "expert", "mastery", "random", "exp3", "thompson", "ucb1"]


class PopulationSpec(Model):
    name: str
    learner: Literal["bkt", "irt"] = "bkt"
    mix: dict[str, float]                       # profile -> share
    n_learners: int | None = Field(None, ge=1)  # default: simulate.n_learners


class PolicySpec(Model):
    name: str | None = None                     # default: the kind
    kind: POLICY_KIND
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.kind


class SimulateSpec(Model):
    n_learners: int = Field(1000, ge=1)
    n_steps: int = Field(300, ge=1)
    workers: int | None = Field(None, ge=1)      # processes (default: CPU cores)
    baseline: str = "expert"                    # policy the others are measured against
    mastery_levels: list[float] = Field(default_factory=lambda: [0.5, 0.8])
    populations: list[PopulationSpec]
    policies: list[PolicySpec]
    profiles: dict[Literal["bkt", "irt"], dict[str, dict[str, float]]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SimulateSpec:
        names = [p.label for p in self.policies]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"policies: duplicate name '{dup[0]}' (give each a distinct name)")
        if self.baseline not in names:
            raise ValueError(f"baseline '{self.baseline}' is not one of the policies ({', '.join(names)})")
        pops = [p.name for p in self.populations]
        dup = sorted({n for n in pops if pops.count(n) > 1})
        if dup:
            raise ValueError(f"populations: duplicate name '{dup[0]}'")
        for lv in self.mastery_levels:
            if not 0 < lv <= 1:
                raise ValueError(f"mastery_levels: {lv} must lie in (0, 1]")
        return self


class HintSpec(Model):
    enabled: bool = True
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)  # the embedded SmolLM2 by default
    max_tokens: int = Field(60, ge=1, le=512)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    timeout_s: float = Field(60.0, gt=0)
    max_chars: int = Field(300, ge=20)
    grade_margin: float = Field(0.0, ge=0.0)     # allowed reading grade above the learner's grade


class ServeSpec(Model):
    policy: PolicySpec = Field(default_factory=lambda: PolicySpec(kind="zpdes"))
    db: str = "tutor.sqlite"                     # relative to the run directory
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    grade: int | None = Field(None, ge=0, le=12)  # default reading grade of learners (default: curriculum's)
    retention_days: float | None = Field(None, gt=0)  # delete learners inactive this long (None: until deleted)


class TutorRecipe(Model):
    name: str
    seed: int = 0
    curriculum: str                              # built-in name (arith, gsm8k) or YAML path
    simulate: SimulateSpec | None = None
    serve: ServeSpec = Field(default_factory=ServeSpec)
    hints: HintSpec = Field(default_factory=HintSpec)
    base_dir: Path | None = Field(None, exclude=True)


def load_recipe(src: str | Path | dict[str, Any] | TutorRecipe) -> tuple[TutorRecipe, Any]:
    """Validate a recipe and compile its curriculum, populations and policies; returns (recipe, curriculum)."""
    from banditarena.config import load_yaml, validate
    from banditarena.curriculum.learners import make_learners
    from banditarena.curriculum.policies import make_policy
    from banditarena.curriculum.spec import load_curriculum

    if isinstance(src, TutorRecipe):
        rec, where = src, "recipe"
    elif isinstance(src, (str, Path)):
        where = str(src)
        rec = validate(TutorRecipe, load_yaml(src), src, base_dir=Path(src).resolve().parent)
    elif isinstance(src, dict):
        where = "recipe"
        rec = validate(TutorRecipe, src, where)
    else:
        raise ConfigError("recipe: a recipe must be a mapping")
    cur = load_curriculum(rec.curriculum, rec.base_dir)
    rng = np.random.default_rng(0)
    checks: list[tuple[str, PolicySpec]] = [("serve.policy", rec.serve.policy)]
    if rec.simulate is not None:
        sim = rec.simulate
        for i, pop in enumerate(sim.populations):
            try:
                make_learners(pop.learner, cur, max(len(pop.mix), 1), pop.mix, rng,
                              sim.profiles.get(pop.learner))
            except ConfigError as exc:
                raise ConfigError(f"{where}: field 'simulate.populations.{i}' ({pop.name}): {exc}") from None
        checks += [(f"simulate.policies.{i}", p) for i, p in enumerate(sim.policies)]
    for field, pol in checks:
        try:
            make_policy(pol.kind, cur, 1, rng, pol.params)
        except (ConfigError, ValueError) as exc:
            raise ConfigError(f"{where}: field '{field}' ({pol.label}): {exc}") from None
    return rec, cur
