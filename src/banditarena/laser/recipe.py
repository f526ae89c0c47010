"""The LASeR recipe: a pydantic model validated from YAML (``banditarena laser RECIPE.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from banditarena.config import EndpointConfig, Model, TrainingConfig, load_yaml, validate
from banditarena.errors import ConfigError
from banditarena.laser.pairs import PairWith
from banditarena.laser.policy import GenDtype

__all__ = ["DEV_REWARDS", "LASER_VARIANTS", "METHODS", "DataSpec", "LaserRecipe", "LaserTraining", "LoopSpec", "PolicySpec", "RewardModelSpec",
           "load_recipe"]

METHODS = ("laser", "single", "best_single", "random", "sequential", "ensemble_avg", "ensemble_agree", "router")
#: LASeR with an explicit bandit reward, e.g. ``laser:agreement`` beside ``laser`` (the recipe's loop.reward)
LASER_VARIANTS = ("laser:loss", "laser:agreement", "laser:gain")
#: bandit rewards that sample the dev window every iteration (they need ``loop.dev_batch`` dev problems)
DEV_REWARDS = ("agreement", "gain")


class PolicySpec(Model):
    """The policy: a local checkpoint path or the embedded default, and how it samples and embeds prompts."""

    model: str = "smollm2-135m-instruct"
    system_prompt: str | None = None
    n_samples: int = Field(4, ge=2)
    temperature: float = Field(0.8, gt=0)
    max_new_tokens: int = Field(128, ge=1)
    gen_batch_size: int = Field(32, ge=1)
    # bfloat16: sample and evaluate with a bfloat16 copy (about 2x faster on an AVX512-BF16 CPU; training stays
    # float32). float32 reproduces the runs in docs/laser.md.
    gen_dtype: GenDtype = "float32"
    context: Literal["mean", "last"] = "mean"
    context_dim: int | None = Field(16, ge=1)


class DataSpec(Model):
    """Problems: ``arithmetic`` (generated, with categories), ``gsm8k`` or any ``jsonl`` (question, answer)."""

    source: Literal["arithmetic", "gsm8k", "jsonl"] = "arithmetic"
    path: str | None = None  # gsm8k/jsonl: one file split into train/dev/test
    test_path: str | None = None  # optional separate held-out file (then test comes from here)
    n_train: int = Field(96, ge=1)
    n_dev: int = Field(40, ge=0)
    n_test: int = Field(150, ge=0)
    seed: int = 0
    instruction: str | None = None  # None: data.INSTRUCTION

    @model_validator(mode="after")
    def _paths(self) -> DataSpec:
        if self.source in {"gsm8k", "jsonl"} and not self.path:
            raise ValueError(f"data.path is required for source '{self.source}'")
        return self


class RewardModelSpec(Model):
    """One reward model (an arm). ``kind`` is a name of :data:`laser.rm_registry.RM_KINDS` (likelihood, gguf,
    classifier, verifier, partial, refsim, llm_judge, learned, ...); wrappers via noise_sigma / corrupt_p."""

    name: str
    kind: str
    model: str | None = None  # likelihood / classifier: checkpoint path or alias; gguf: .gguf path or package alias;
    # learned: the learned judge's artifact (default, judge-learned-fast, or a path)
    method: Literal["numbers", "tokens", "embedding"] = "numbers"  # refsim
    context_template: str | None = None  # likelihood / gguf: e.g. "{prompt}\nReference: {reference}"
    system_prompt: str | None = None
    endpoint: EndpointConfig | None = None  # llm_judge: the judge model's endpoint
    threads: int = Field(1, ge=1)  # gguf: llama.cpp threads
    renamed: ClassVar[dict[str, str]] = {"backend": "endpoint"}
    noise_sigma: float = Field(0.0, ge=0)
    corrupt_p: float = Field(0.0, ge=0, le=1)
    corrupt_mode: Literal["invert", "shuffle", "nan", "raise"] = "invert"

    @field_validator("endpoint", mode="before")
    @classmethod
    def _old_backend_keys(cls, v: Any) -> Any:
        if isinstance(v, dict) and "kind" in v:  # the old make_backend kwargs: {kind, model, base_url, ...}
            v = {("backend" if k == "kind" else k): x for k, x in v.items()}
        return v

    @model_validator(mode="after")
    def _kind(self) -> RewardModelSpec:
        from banditarena.laser.rm_registry import RM_KINDS

        if self.kind not in RM_KINDS:
            raise ValueError(f"reward model '{self.name}': unknown kind '{self.kind}' (known: {', '.join(RM_KINDS)})")
        for f in RM_KINDS[self.kind][1]:
            if not getattr(self, f):
                raise ValueError(f"reward model '{self.name}' of kind '{self.kind}' needs '{f}'")
        return self


class LoopSpec(Model):
    """The iterative DPO loop and the bandit."""

    iterations: int = Field(6, ge=1)
    batch_size: int = Field(16, ge=1)  # prompts per iteration
    mode: Literal["batch", "instance"] = "batch"
    alpha: float = Field(1.0, ge=0)  # LinUCB exploration
    # laser: batches each RM gets in turn before LinUCB chooses (round-robin warm start; 0: none, and LinUCB
    # may never try an RM whose rewards would beat the first one's, see laser.selection.RMSelector)
    warmup: int = Field(1, ge=0)
    pairs_m: int | None = Field(None, ge=2)  # pairs = top vs ranks 2..m (None: all n samples)
    # rank: top vs ranks 2..m, a pair whose scores tie is dropped (the runs in docs/laser.md); lower: top vs the
    # m-1 best answers scored strictly below it (a tie at the top never costs the pair; laser.pairs)
    pair_with: PairWith = "rank"
    agreement: float = Field(0.5, gt=0, le=1)  # ensemble_agree: fraction of RMs that must prefer the top answer
    reward: Literal["loss", "agreement", "gain"] = "loss"  # LASeR's bandit reward (laser.rewards); laser:<r> overrides
    dev_batch: int = Field(8, ge=2)  # agreement / gain reward: dev problems per iteration (a rotating window)
    # common random numbers: sampling, RM noise, training and dev sampling draw from streams that do not depend
    # on the method, so two methods that choose the same RMs train the same policy (False: one stream per method)
    paired_streams: bool = False


class LaserTraining(TrainingConfig):
    """LASeR's training defaults: one round of DPO + NLL per iteration (no SFT), LoRA, short sequences."""

    sft: bool = False
    nll_alpha: float = Field(1.0, ge=0)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(384, ge=16)


class LaserRecipe(Model):
    """A whole LASeR experiment: policy, data, reward models, loop and the methods to compare."""

    name: str = "laser"
    seed: int = 0
    policy: PolicySpec = PolicySpec()
    data: DataSpec = DataSpec()
    reward_models: list[RewardModelSpec]
    loop: LoopSpec = LoopSpec()
    training: LaserTraining = LaserTraining()
    methods: list[str] = Field(default_factory=lambda: [m for m in METHODS if m != "router"])
    eval_every: int = Field(0, ge=0)  # evaluate on test after every k-th iteration (0: final only)
    eval_methods: list[str] | None = None  # methods with the per-iteration curve (None: all)
    eval_max_new_tokens: int = Field(128, ge=1)

    renamed: ClassVar[dict[str, str]] = {"loop.beta": "training.beta", "loop.nll_alpha": "training.nll_alpha",
               "loop.lr": "training.dpo_learning_rate", "loop.epochs": "training.epochs",
               "loop.train_batch_size": "training.batch_size", "loop.max_length": "training.max_length",
               "loop.lora": "training.lora", "loop.lora_r": "training.lora_r", "loop.lora_alpha": "training.lora_alpha"}

    @model_validator(mode="after")
    def _check(self) -> LaserRecipe:
        if not self.reward_models:
            raise ValueError("reward_models: at least one reward model is required")
        names = [r.name for r in self.reward_models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"reward_models: duplicate names {dup}")
        bad = [m for m in self.methods if m not in METHODS and m not in LASER_VARIANTS]
        if bad:
            raise ValueError(f"methods: unknown method '{bad[0]}' (known: {', '.join(METHODS + LASER_VARIANTS)})")
        dev_rewards = [r for r in DEV_REWARDS if f"laser:{r}" in self.methods or (
            self.loop.reward == r and "laser" in self.methods)]
        if dev_rewards and self.data.n_dev < self.loop.dev_batch:
            raise ValueError(f"loop.dev_batch: the {dev_rewards[0]} reward takes {self.loop.dev_batch} dev problems "
                             f"per iteration but data.n_dev is {self.data.n_dev}")
        if "gain" in dev_rewards and self.loop.mode == "instance":
            raise ValueError("loop.mode: the gain reward measures a whole round, so it needs mode 'batch'")
        if "router" in self.methods and self.data.n_dev == 0:
            raise ValueError("data.n_dev: method 'router' fits its routes on the dev set, which is empty")
        if self.loop.pairs_m is not None and self.loop.pairs_m > self.policy.n_samples:
            raise ValueError(f"loop.pairs_m ({self.loop.pairs_m}) > policy.n_samples ({self.policy.n_samples})")
        return self


def load_recipe(src: str | Path | dict[str, Any] | LaserRecipe) -> LaserRecipe:
    """Validate a recipe from a YAML path, a dict or a recipe; ConfigError names the file and field."""
    if isinstance(src, LaserRecipe):
        return src
    if isinstance(src, (str, Path)):
        return validate(LaserRecipe, load_yaml(src), src)
    if not isinstance(src, dict):
        raise ConfigError("recipe: a recipe must be a mapping")
    return validate(LaserRecipe, src, "recipe")
