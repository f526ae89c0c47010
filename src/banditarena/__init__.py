"""banditarena: the post-training data flywheel with multi-armed bandits.

Importing the package is light: no torch, transformers or sentence-transformers. Heavy dependencies are
imported inside the functions that use them.
"""

from banditarena.errors import (
    BanditArenaError,
    ConfigError,
    DataError,
    EndpointError,
    JudgeError,
    ModelError,
    StoreError,
)
from banditarena.types import Battle, Completion, Contestant, Generation, Judgment, Prompt, Strategy

__version__ = "0.1.0"

__all__ = [
    "BanditArenaError",
    "Battle",
    "Completion",
    "ConfigError",
    "Contestant",
    "DataError",
    "EndpointError",
    "Generation",
    "JudgeError",
    "Judgment",
    "ModelError",
    "Prompt",
    "StoreError",
    "Strategy",
    "__version__",
]
