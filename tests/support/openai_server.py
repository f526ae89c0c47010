"""The fault server made arena-aware: judge calls get judge-format answers, answers are counted by content.

A request whose last user message mentions "Assistant A" is a judge call and gets ``Score A``/``Score B``
lines derived from a hash of the request; any other request gets a deterministic answer whose length
depends on the model name. ``requests`` counts successful answers per request content, so a test can
check that nothing was paid for twice.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from tests.support.fault_server import FaultServer


class FakeOpenAIServer(FaultServer):
    def __init__(self, *, latency_s: float = 0.0, fail_rate: float = 0.0, hang_s: float = 5.0, seed: int = 0,
                 down: bool = False, faults: dict[str, float] | None = None, trickle_s: float = 5.0,
                 api_key: str | None = None, quiet: bool = True) -> None:
        share = fail_rate / 3
        super().__init__(p_429=share, p_500=share, p_hang=share, seed=seed, delay_s=latency_s, hang_s=hang_s,
                         faults=faults, trickle_s=trickle_s, api_key=api_key, quiet=quiet)
        self.requests: Counter[str] = Counter()  # content hash -> successful answers
        self.down = down

    @property
    def down(self) -> bool:
        return self.p_500 == 1.0

    @down.setter
    def down(self, value: bool) -> None:
        self.p_429, self.p_500, self.p_hang = (0.0, 1.0, 0.0) if value else (self.p_429, 0.0, self.p_hang)

    @property
    def attempts(self) -> int:
        return self.counts["received"]

    @property
    def failures(self) -> Counter[str]:
        return Counter({k: v for k, v in self.counts.items() if k not in ("ok", "received")})

    def answer_for(self, body: dict[str, Any]) -> str:  # type: ignore[override]
        blob = json.dumps(body, sort_keys=True)
        key = hashlib.sha256(blob.encode()).hexdigest()
        with self._lock:
            self.requests[key] += 1
        users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
        last = users[-1] if users else ""
        h = int(key, 16)
        if "Assistant A" in last:
            return f"Rationale: deterministic test judgment.\nScore A: {1 + h % 10}\nScore B: {1 + (h // 10) % 10}"
        model = body.get("model", "fake")
        words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
        n = 3 + h % 12 + (8 if "strong" in model else 0)
        return f"[{model}] " + " ".join(words[(h >> i) % len(words)] for i in range(n))
