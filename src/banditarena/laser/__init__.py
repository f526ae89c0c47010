"""banditarena.laser: LASeR - a contextual bandit picks the reward model for iterative DPO.

Entry point :func:`run_laser` (``banditarena laser RECIPE.yaml``); the loop lives in :mod:`.loop`, the
recipe in :mod:`.recipe`, the policy wrapper in :mod:`.policy`, the problem sets in :mod:`.data`.
Importing this package loads no model library.
"""

from banditarena.laser.data import arithmetic_problems, load_gsm8k, load_jsonl_problems, split_problems
from banditarena.laser.loop import MethodRunner, MethodState
from banditarena.laser.pairs import PairStats, agreement_pairs, ensemble_scores, form_pairs
from banditarena.laser.policy import EvalResult, Policy
from banditarena.laser.recipe import (
    METHODS,
    DataSpec,
    LaserRecipe,
    LoopSpec,
    PolicySpec,
    RewardModelSpec,
    load_recipe,
)
from banditarena.laser.run import (
    LaserResults,
    build_reward_model,
    load_problems,
    method_names,
    paired_test,
    run_laser,
    selection_frequencies,
    selection_over_time,
)

__all__ = [
    "METHODS", "DataSpec", "EvalResult", "LaserRecipe", "LaserResults", "LoopSpec", "MethodRunner", "MethodState",
    "PairStats", "Policy", "PolicySpec", "RewardModelSpec", "agreement_pairs", "arithmetic_problems",
    "build_reward_model", "ensemble_scores", "form_pairs", "load_gsm8k", "load_jsonl_problems", "load_problems",
    "load_recipe", "method_names", "paired_test", "run_laser", "selection_frequencies", "selection_over_time", "split_problems",
]
