"""Shared helpers of the bandit core: input validation, seeds, JSON-safe state (numpy only)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class BanditInputError(ValueError):
    """Bad input to a bandit policy, log or estimator; the message is one line naming the field at fault."""

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from an int seed, a Generator (used as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.default_rng(None if seed is None else int(seed))
    raise BanditInputError(f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """JSON-safe snapshot of a Generator's bit generator (any numpy bit generator)."""
    bg = rng.bit_generator
    return {"bit_generator": type(bg).__name__, "state": _jsonable(bg.state)}


def rng_from_state(d: dict[str, Any]) -> np.random.Generator:
    """Rebuild a Generator from :func:`rng_state` output."""
    try:
        cls = getattr(np.random, d["bit_generator"])
        bg = cls()
        bg.state = _from_jsonable(d["state"])
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise BanditInputError(f"state_dict field 'rng' is not a valid generator state: {exc}") from None
    return np.random.Generator(bg)


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise BanditInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BanditInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise BanditInputError(f"{name} must be finite, got {value!r}")
    if low is not None and (v < low or (low_open and v == low)):
        raise BanditInputError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (v > high or (high_open and v == high)):
        raise BanditInputError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return v
