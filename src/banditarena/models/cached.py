"""A backend wrapped with the run store's request cache: look up first, commit each reply as it returns.

:class:`CachedBackend` is what makes "a kill re-pays at most the requests in flight" hold for callers that
are not the arena's own generation loop: the LLM judge (both replies of a format retry), the flywheel's
simulated user, the safety classifier. Every request is content-addressed exactly as the arena does it
(the backend's cache key, plus the request's seed when it has one); a stored reply is returned without
sending anything; a reply that arrives is committed in its own transaction before it is handed back. Failed
requests are not cached (the caller records them as resumable failures).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from banditarena.models.base import Backend, ChatRequest
from banditarena.types import Completion, Strategy, stable_hash

if TYPE_CHECKING:
    from banditarena.store import RunStore


def request_key(backend: Backend, request: ChatRequest, strategy: Strategy) -> str:
    """The content address of one request: the backend's cache key, plus the seed when one is sent."""
    base = backend.cache_key(request, strategy)
    return base if request.seed is None else stable_hash([base, request.seed])


class CachedBackend(Backend):
    """``inner`` behind the completions cache of ``store``; ``subject`` names the caller in the store."""

    def __init__(self, inner: Backend, store: RunStore, subject: str) -> None:
        super().__init__(inner.model)
        self.inner = inner
        self.store = store
        self.subject = subject
        self.kind = inner.kind  # type: ignore[misc]  # behaves as the backend it wraps
        self.paid = 0  # requests sent (cache misses) through this wrapper

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def cache_key(self, request: ChatRequest, strategy: Strategy) -> str:
        return self.inner.cache_key(request, strategy)

    @property
    def batch_size(self) -> int:
        return int(getattr(self.inner, "batch_size", 1))

    def __getattr__(self, name: str) -> Any:  # stats, base_url, ... of the wrapped backend
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def acomplete(
        self, requests: list[ChatRequest], strategy: Strategy, progress: Callable[[int], None] | None = None
    ) -> list[Completion]:
        keys = [request_key(self.inner, r, strategy) for r in requests]
        cached = self.store.get_completions(keys)
        out: list[Completion | None] = [cached.get(k) for k in keys]
        todo = [i for i, c in enumerate(out) if c is None]
        if progress is not None and len(todo) < len(requests):
            progress(len(requests) - len(todo))

        def commit(i: int, comp: Completion) -> None:
            out[i] = comp
            if comp.ok:
                self.store.put_completions([(keys[i], comp, self.subject, requests[i].prompt_id)])
            if progress is not None:
                progress(1)

        if self.batch_size > 1 and len(todo) > 1:  # an in-process batched model: one call, then commit
            comps = await self.inner.acomplete([requests[i] for i in todo], strategy)
            self.paid += len(todo)
            for i, comp in zip(todo, comps, strict=True):
                commit(i, comp)
        else:  # remote: each request on its own, committed the moment its reply is in

            async def one(i: int) -> None:
                (comp,) = await self.inner.acomplete([requests[i]], strategy)
                self.paid += 1
                commit(i, comp)

            await asyncio.gather(*(one(i) for i in todo))
        return [c for c in out if c is not None]

    async def aclose(self) -> None:
        await self.inner.aclose()
