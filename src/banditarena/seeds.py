"""One seed scheme: every random stream is a named child of the recipe's seed.

``child_seed(seed, "allocation", "clusters")`` hashes the recipe's seed together with the names of what the
stream is for, so streams are independent of each other, stable when others are added or reordered, and the
same on every machine (no ``seed * 1009 + i`` arithmetic whose streams collide across recipes).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: child seeds are below 2**31 so that every library takes them (torch, numpy, random, TRL).
_MASK = (1 << 31) - 1


def child_seed(seed: int, *names: Any) -> int:
    """A seed in ``[0, 2**31)`` for the stream called ``names`` under ``seed``."""
    blob = json.dumps([int(seed), *[str(n) for n in names]], separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") & _MASK
