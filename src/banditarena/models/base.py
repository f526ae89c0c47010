"""Backend protocol shared by every model backend (openai, local, replay).

A backend turns chat requests into completions. Transient failures (429, 5xx, timeouts, connection errors
after all retries) come back as ``Completion(error=...)`` and never raise: the arena records them as
resumable failures. Problems the user must fix (missing API-key env var, model file not found) raise
:class:`banditarena.errors.ModelError` at construction.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from banditarena.types import Completion, Message, Strategy, stable_hash


@dataclass
class ChatRequest:
    """One request: the conversation so far (system prompt included) and where it comes from."""

    prompt_id: str
    turn: int  # index of the user turn being answered (0-based)
    messages: list[Message]
    seed: int | None = None  # per-request sampling seed (derived from the cache key by the arena)


class Backend(ABC):
    """Abstract model backend. Subclasses set ``kind`` and implement :meth:`acomplete`."""

    kind: ClassVar[str] = "abstract"

    def __init__(self, model: str, **options: Any) -> None:
        self.model = model
        self.options = options

    def identity(self) -> dict[str, Any]:
        """What determines the output besides the request: goes into every cache key.

        Never includes secrets (API keys) or settings that do not change outputs (timeouts, concurrency).
        """
        return {"backend": self.kind, "model": self.model}

    def cache_key(self, request: ChatRequest, strategy: Strategy) -> str:
        return stable_hash(
            {"id": self.identity(), "strategy": strategy.cache_identity(), "messages": request.messages}
        )

    @abstractmethod
    async def acomplete(
        self,
        requests: list[ChatRequest],
        strategy: Strategy,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        """Complete every request (same order). Call ``progress(k)`` as k more requests finish."""

    def complete(self, requests: list[ChatRequest], strategy: Strategy) -> list[Completion]:
        """Synchronous convenience wrapper."""
        return asyncio.run(self.acomplete(requests, strategy))

    async def aclose(self) -> None:
        """Release connections/models."""


def with_system_prompt(messages: list[Message], strategy: Strategy) -> list[Message]:
    """The messages to send: the strategy's system prompt first unless the conversation already has one.

    The arena normally puts the system prompt into :attr:`ChatRequest.messages` itself; this keeps a backend
    correct when it is called directly with bare user turns.
    """
    if strategy.system_prompt and not (messages and messages[0].get("role") == "system"):
        return [{"role": "system", "content": strategy.system_prompt}, *messages]
    return list(messages)


def request_seed(request: ChatRequest) -> int:
    """The request's sampling seed; without one, a seed derived from its content (same request, same seed)."""
    if request.seed is not None:
        return int(request.seed)
    return int(stable_hash({"prompt_id": request.prompt_id, "turn": request.turn, "m": request.messages}, 15), 16)
