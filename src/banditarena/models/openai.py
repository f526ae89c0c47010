"""OpenAI-compatible chat backend (vLLM, SGLang, llama.cpp, Ollama, OpenAI...) over plain ``httpx``.

Every request is a ``POST {base_url}/chat/completions``. Robustness rules:

* **Concurrency** is limited per endpoint: every :class:`OpenAIBackend` pointing at the same ``base_url``
  inside one event loop shares one limiter, whose capacity is the smallest ``concurrency`` any of them asked
  for. The limiter is held only while a request is in flight, never while backing off.
* **Timeouts**: ``timeout_s`` is a hard deadline for one attempt (connect + send + wait + read).
* **Retries**: 429, 408, 5xx, timeouts and connection errors are retried up to ``max_retries`` times with
  exponential backoff and full jitter (``uniform(0, min(backoff_max_s, backoff_base_s * 2**attempt))``),
  waiting at least ``Retry-After`` when the server sends one (capped at ``backoff_max_s``). Other 4xx
  answers (bad request, unknown model, bad key) fail at once.
* **Unusable 200 answers** (malformed JSON, no or empty ``choices``, ``content: null``, a reply far longer
  than ``max_tokens`` allows) are transient failures: retried with backoff like a 5xx, counted by kind in
  ``stats`` (``unusable_<kind>``), never returned as an answer. The body is read as a stream and cut off at
  :meth:`OpenAIBackend.reply_byte_limit` bytes, so an endless or huge reply costs bounded memory and time;
  bodies over 64 KiB are decoded in a worker thread, never blocking the event loop (other requests' deadlines).
* **Failures never raise**: after the last retry the request comes back as ``Completion(error=...)`` with a
  one-line message naming the model, the base_url and the last status or exception. The arena records it
  as a resumable failure.
* **Circuit breaker** (per base_url, process-wide): after ``breaker_threshold`` consecutive attempts that
  got no usable answer (timeouts, connection errors, 5xx), further attempts fail at once, without being
  sent, for ``breaker_cooldown_s`` seconds; so an endpoint that stays down costs one round of timeouts,
  not hours. Any HTTP answer other than a 5xx (a success, a 429, a 4xx) proves the endpoint alive and
  resets the count. After the cool-down the next failing attempt opens it again at once.

* **Replica pools**: ``base_url`` may be a list of replicas of one model (several vLLM/SGLang servers). Each
  attempt goes to the least-loaded healthy replica (in-flight requests over its concurrency; ties to the one
  sent the fewest); a replica that fails ``eject_after`` attempts in a row is ejected for
  ``breaker_cooldown_s`` and then probed back by the next request; a failed attempt is retried at once on
  another healthy replica (backoff applies only when none is left). Replicas serve one model, so they share
  the cache: a request answered by one is never sent to another.

``identity()`` is ``{"backend": "openai", "model": ..., "extra_body": ...}``: it leaves out the API key, the
timeouts, the retry settings, the concurrency *and the base_url*, so the same model served from another
host or port reuses the cached generations. Give two different models different ``model`` names.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from banditarena.errors import ConfigError, ModelError
from banditarena.models.base import Backend, ChatRequest, with_system_prompt
from banditarena.secrets import redact, register_secret
from banditarena.types import Completion, Strategy

_RETRY_STATUSES = frozenset({408, 429})
#: A reply's text may hold at most this many characters per requested token (plus a constant) before it is
#: "far beyond max_tokens": real tokens average about 4 characters; 32 leaves room for any tokenizer.
CHARS_PER_TOKEN_LIMIT = 32
_ERROR_BODY_BYTES = 16_384  # how much of a non-200 body is read (for the error message)
_THREAD_PARSE_BYTES = 65_536  # bodies above this are decoded off the event loop


class _Unusable(Exception):
    """A 200 reply that carries no usable answer; ``kind`` names why (for the stats)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def decode_reply(blob: bytes, max_chars: int | None) -> tuple[str, int, str | None]:
    """(text, completion tokens, finish_reason) of a chat-completions body; raises :class:`_Unusable`."""
    import json

    try:
        data = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Unusable("bad_json", f"malformed JSON ({exc.__class__.__name__}): {_one_line(blob[:200].decode('utf-8', 'replace'))}") from None
    if not isinstance(data, dict) or "choices" not in data:
        raise _Unusable("no_choices", f"no 'choices' in the reply: {_one_line(blob[:200].decode('utf-8', 'replace'))}")
    choices = data["choices"]
    if not isinstance(choices, list) or not choices:
        raise _Unusable("empty_choices", "empty 'choices' list in the reply")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise _Unusable("no_message", "the first choice has no 'message'")
    text = message.get("content")
    if text is None:
        raise _Unusable("null_content", "the reply's content is null")
    if not isinstance(text, str):
        raise _Unusable("bad_content", f"the reply's content is a {type(text).__name__}, not text")
    if max_chars is not None and len(text) > max_chars:
        raise _Unusable("oversized", f"the reply holds {len(text)} characters, far beyond max_tokens (limit {max_chars})")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    try:
        tokens = int(usage.get("completion_tokens") or 0)
    except (TypeError, ValueError):
        tokens = 0
    finish = choice.get("finish_reason")
    return text, tokens, finish if isinstance(finish, str) else None


class _Limiter:
    """An async counting limiter whose capacity can only shrink (the smallest requested limit wins)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.active = 0
        self._cond = asyncio.Condition()

    def lower_to(self, capacity: int) -> None:
        self.capacity = min(self.capacity, capacity)

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < self.capacity)
            self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify(1)


@dataclass
class _Health:
    """Circuit-breaker state of one base_url, shared process-wide (an endpoint is down for every loop)."""

    consecutive_failures: int = 0
    open_until: float = 0.0

    def is_open(self) -> bool:
        return bool(self.open_until) and time.monotonic() < self.open_until


@dataclass
class _Endpoint:
    """State shared by every backend talking to one base_url inside one event loop."""

    url: str
    limiter: _Limiter
    health: _Health
    stats: Counter[str] = field(default_factory=Counter)


_HEALTH: dict[str, _Health] = {}
# event loop -> base_url -> shared endpoint state (asyncio primitives belong to one loop; dies with it)
_ENDPOINTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Endpoint]] = (
    weakref.WeakKeyDictionary()
)


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, ...], asyncio.Condition]] = (
    weakref.WeakKeyDictionary()
)


def _pool_condition(urls: tuple[str, ...]) -> asyncio.Condition:
    """The condition a pool's requests wait on for a free replica slot (one per pool and event loop)."""
    per_loop = _POOLS.setdefault(asyncio.get_running_loop(), {})
    cond = per_loop.get(urls)
    if cond is None:
        cond = per_loop[urls] = asyncio.Condition()
    return cond


def _endpoint(base_url: str, concurrency: int) -> _Endpoint:
    loop = asyncio.get_running_loop()
    per_loop = _ENDPOINTS.setdefault(loop, {})
    ep = per_loop.get(base_url)
    if ep is None:
        ep = per_loop[base_url] = _Endpoint(base_url, _Limiter(concurrency), _HEALTH.setdefault(base_url, _Health()))
    else:
        ep.limiter.lower_to(concurrency)
    return ep


def _retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class OpenAIBackend(Backend):
    """Chat completions from any OpenAI-compatible HTTP endpoint.

    Args:
        model: model name sent in the request body (and part of the cache identity).
        base_url: endpoint root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended), or a
            list of replica roots serving the same model (a pool).
        api_key_env: *name* of the environment variable holding the API key (sent as a Bearer token).
            None: no key. A named but unset/empty variable raises :class:`ModelError` here.
        concurrency: maximum requests in flight to this ``base_url`` (shared, smallest wins).
        timeout_s: hard deadline of one attempt, in seconds.
        max_retries: retries after the first attempt on 429/408/5xx/timeouts/connection errors.
        backoff_base_s, backoff_max_s: exponential backoff with full jitter between attempts.
        extra_body: extra JSON fields merged into every request body (e.g. ``{"top_k": 20}``).
        breaker_threshold: consecutive failed attempts (timeouts, connection errors, 5xx) at this base_url
            that open its circuit breaker (0 disables it).
        breaker_cooldown_s: how long an open breaker fails requests without sending them.
        jitter_seed: seed of the backoff jitter (None: fresh entropy; jitter never affects outputs).
        eject_after: in a pool of replicas, consecutive failed attempts that eject a replica for
            ``breaker_cooldown_s`` (a single endpoint uses ``breaker_threshold``).
        liveness: for a server this process manages (e.g. :class:`~banditarena.models.llamacpp.LlamaCppServer`):
            called when an attempt gets no answer; a returned message (the server process died, and how)
            ends the request at once with that message instead of retrying a dead endpoint.

    Attributes:
        stats: a ``Counter`` of this backend's ``requests``, ``attempts``, ``retries``, ``ok``, ``failed``,
            ``timeouts``, ``connection_errors``, ``http_<status>`` answers and ``breaker_rejections``.

    ``Strategy.n`` is not sent (one completion per request; the arena asks again with other seeds).
    """

    kind: ClassVar[str] = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | list[str],
        api_key_env: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        extra_body: dict[str, Any] | None = None,
        breaker_threshold: int = 20,
        breaker_cooldown_s: float = 30.0,
        jitter_seed: int | None = None,
        liveness: Callable[[], str | None] | None = None,
        eject_after: int = 3,
    ) -> None:
        super().__init__(model)
        if not model:
            raise ConfigError("openai backend: 'model' is empty")
        urls = [base_url] if isinstance(base_url, str) else list(base_url) if isinstance(base_url, (list, tuple)) else []
        if not urls:
            raise ConfigError(f"openai backend for model '{model}': base_url must be a URL or a list of replica URLs")
        for u in urls:
            if not isinstance(u, str) or not u.startswith(("http://", "https://")):
                raise ConfigError(f"openai backend for model '{model}': base_url {u!r} must start with http(s)://")
        if len(set(urls)) != len(urls):
            raise ConfigError(f"openai backend for model '{model}': a replica is listed twice in base_url")
        for name, value, lo in (
            ("concurrency", concurrency, 1),
            ("max_retries", max_retries, 0),
            ("breaker_threshold", breaker_threshold, 0),
            ("eject_after", eject_after, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < lo:
                raise ConfigError(f"openai backend for model '{model}': {name}={value!r} must be an integer >= {lo}")
        for name, value in (("timeout_s", timeout_s), ("backoff_max_s", backoff_max_s)):
            if not value > 0:
                raise ConfigError(f"openai backend for model '{model}': {name}={value!r} must be > 0")
        for name, value in (("backoff_base_s", backoff_base_s), ("breaker_cooldown_s", breaker_cooldown_s)):
            if not value >= 0:
                raise ConfigError(f"openai backend for model '{model}': {name}={value!r} must be >= 0")
        if extra_body is not None and not isinstance(extra_body, dict):
            raise ConfigError(f"openai backend for model '{model}': extra_body must be a mapping")

        self.base_urls = [u.rstrip("/") for u in urls]
        self.base_url = self.base_urls[0] if len(self.base_urls) == 1 else "pool[" + ", ".join(self.base_urls) + "]"
        self.eject_after = eject_after
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.extra_body = dict(extra_body or {})
        self.breaker_threshold = breaker_threshold
        self.breaker_cooldown_s = float(breaker_cooldown_s)
        self._rng = random.Random(jitter_seed)
        self.liveness = liveness
        self._headers: dict[str, str] = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ModelError(
                    f"openai backend for model '{model}': environment variable '{api_key_env}' "
                    f"(api_key_env) is not set"
                )
            self._headers["Authorization"] = f"Bearer {key}"
            register_secret(key)
        self.stats: Counter[str] = Counter()
        # one httpx client per event loop (a client's connections belong to the loop that opened them)
        self._clients: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], httpx.AsyncClient]] = {}

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r}, concurrency={self.concurrency})"


    def identity(self) -> dict[str, Any]:
        """Cache identity: backend kind, model and extra_body; never the key, base_url or timing settings."""
        ident = super().identity()
        if self.extra_body:
            ident["extra_body"] = self.extra_body
        return ident

    # -- plumbing -------------------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        for key, (ref, _client) in list(self._clients.items()):
            if ref() is None or ref().is_closed():  # type: ignore[union-attr]
                del self._clients[key]  # its loop is gone; so are its connections
        entry = self._clients.get(id(loop))
        if entry is not None and entry[0]() is loop:
            return entry[1]
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=max(self.concurrency, 8)),
            headers=self._headers,
        )
        self._clients[id(loop)] = (weakref.ref(loop), client)
        return client

    def payload(self, request: ChatRequest, strategy: Strategy) -> dict[str, Any]:
        """The JSON body sent for one request."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": with_system_prompt(request.messages, strategy),
            "temperature": strategy.temperature,
            "top_p": strategy.top_p,
            "max_tokens": strategy.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = int(request.seed)
        body.update(self.extra_body)
        return body

    def _backoff_s(self, attempt: int, retry_after: float | None) -> float:
        delay = self._rng.uniform(0.0, min(self.backoff_max_s, self.backoff_base_s * (2**attempt)))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    def _threshold(self) -> int:
        return self.eject_after if len(self.base_urls) > 1 else self.breaker_threshold

    def replica_stats(self) -> dict[str, dict[str, int]]:
        """Counters per replica (attempts, ok, failures by kind) in the running event loop."""
        per_loop = _ENDPOINTS.get(asyncio.get_running_loop(), {})
        return {u: dict(per_loop[u].stats) for u in self.base_urls if u in per_loop}

    def _fail(self, ep: _Endpoint, what: str) -> Completion:
        self._count(ep, "failed")
        return Completion(error=redact(f"openai model '{self.model}' at {self.base_url}: {what}"))

    def reply_byte_limit(self, strategy: Strategy) -> int:
        """The most bytes of one reply body that are read: room for the text allowed by ``max_tokens``
        (JSON-escaped) plus the envelope; a longer body is cut off and counted as ``unusable_oversized``."""
        return 65_536 + 8 * self.reply_char_limit(strategy)

    @staticmethod
    def reply_char_limit(strategy: Strategy) -> int:
        """The most characters a reply's text may hold: :data:`CHARS_PER_TOKEN_LIMIT` per requested token."""
        return 256 + CHARS_PER_TOKEN_LIMIT * max(1, int(strategy.max_tokens))

    def _attempt_failed(self, ep: _Endpoint) -> None:
        """An attempt got no usable answer (timeout, connection error, 5xx): feed the breaker (a pool's
        replica is ejected after ``eject_after`` in a row)."""
        health = ep.health
        health.consecutive_failures += 1
        threshold = self._threshold()
        if threshold and health.consecutive_failures >= threshold:
            health.open_until = time.monotonic() + self.breaker_cooldown_s

    @staticmethod
    def _alive(ep: _Endpoint) -> None:
        ep.health.consecutive_failures = 0
        ep.health.open_until = 0.0

    def _count(self, ep: _Endpoint, key: str) -> None:
        self.stats[key] += 1
        ep.stats[key] += 1

    async def _send(self, client: httpx.AsyncClient, url: str, body: dict[str, Any], byte_limit: int
                    ) -> tuple[int, httpx.Headers, bytes, bool]:
        """POST and read the body as a stream: (status, headers, body, cut off at the limit)."""
        async with client.stream("POST", url + "/chat/completions", json=body) as response:
            limit = byte_limit if response.status_code == 200 else _ERROR_BODY_BYTES
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:  # leave at once: closing the stream drops the connection
                    return response.status_code, response.headers, b"".join(chunks)[:limit], True
            return response.status_code, response.headers, b"".join(chunks), False

    async def _acquire(self, eps: list[_Endpoint]) -> _Endpoint | None:
        """A slot on a replica: a single endpoint's own limiter; in a pool, the least-loaded healthy replica
        with a free slot, waiting until one frees (so faster replicas take more of the work). None when every
        replica is ejected."""
        if len(eps) == 1:
            await eps[0].limiter.__aenter__()
            return eps[0]
        cond = _pool_condition(tuple(self.base_urls))
        async with cond:
            while True:
                live = [e for e in eps if not e.health.is_open()]
                if not live:
                    return None
                free = [e for e in live if e.limiter.active < e.limiter.capacity]
                if free:
                    ep = min(free, key=lambda e: (e.limiter.active / e.limiter.capacity, e.stats["attempts"]))
                    ep.limiter.active += 1
                    return ep
                await cond.wait()

    async def _release(self, eps: list[_Endpoint], ep: _Endpoint) -> None:
        await ep.limiter.__aexit__()  # frees the slot and wakes a single-endpoint waiter of the same URL
        if len(eps) > 1:
            cond = _pool_condition(tuple(self.base_urls))
            async with cond:
                cond.notify_all()

    async def _attempt(self, client: httpx.AsyncClient, eps: list[_Endpoint], body: dict[str, Any],
                       byte_limit: int) -> tuple[_Endpoint | None, tuple[int, httpx.Headers, bytes, bool] | str, float]:
        """One attempt on the replica :meth:`_acquire` gives: (the replica, the reply or why there is none,
        the latency). No replica: every one is ejected."""
        ep = await self._acquire(eps)
        if ep is None:
            return None, "every replica is ejected", 0.0
        try:
            if ep.health.is_open():  # opened while this request waited for a slot
                return ep, "open", 0.0
            self._count(ep, "attempts")
            t0 = time.perf_counter()
            try:
                reply: tuple[int, httpx.Headers, bytes, bool] | str = await asyncio.wait_for(
                    self._send(client, ep.url, body, byte_limit), self.timeout_s)
            except (asyncio.TimeoutError, httpx.TimeoutException):
                self._count(ep, "timeouts")
                reply = f"timeout after {self.timeout_s:g}s"
            except httpx.TransportError as exc:  # connection refused/reset (also mid-body), protocol errors
                self._count(ep, "connection_errors")
                reply = f"{type(exc).__name__}: {_one_line(str(exc)) or 'connection error'}"
            return ep, reply, time.perf_counter() - t0
        finally:
            await self._release(eps, ep)

    async def _complete_one(
        self, client: httpx.AsyncClient, eps: list[_Endpoint], request: ChatRequest, strategy: Strategy
    ) -> Completion:
        self.stats["requests"] += 1
        body = self.payload(request, strategy)
        byte_limit = self.reply_byte_limit(strategy)
        char_limit = self.reply_char_limit(strategy)
        last = "no attempt made"
        attempts = 0
        attempt = 0
        while attempt <= self.max_retries:
            retry_after: float | None = None
            picked, outcome, latency = await self._attempt(client, eps, body, byte_limit)
            if picked is None or (outcome == "open" and len(eps) == 1):
                target = picked or eps[0]
                self._count(target, "breaker_rejections")
                note = f"; last: {last}" if attempts else ""
                down = "every replica is ejected" if len(eps) > 1 else (
                    f"circuit open after {target.health.consecutive_failures} consecutive failed attempts")
                return self._fail(target, f"endpoint down, not sent ({down}, cool-down {self.breaker_cooldown_s:g}s){note}")
            ep = picked
            if outcome == "open":  # this replica was ejected while the request waited: try another
                continue
            attempts += 1
            reply = None if isinstance(outcome, str) else outcome
            if reply is None:
                last = str(outcome)
                self._attempt_failed(ep)
                died = self.liveness() if self.liveness is not None else None
                if died:
                    return self._fail(ep, died)
            else:
                status, headers, blob, cut = reply
                if status == 200:
                    self._alive(ep)  # it answers; whether the answer is usable is another matter
                    try:
                        if cut:
                            raise _Unusable("oversized", f"reply body over {byte_limit} bytes (cut off), far "
                                                         f"beyond max_tokens={strategy.max_tokens}")
                        if len(blob) > _THREAD_PARSE_BYTES:
                            text, tokens, finish = await asyncio.to_thread(decode_reply, blob, char_limit)
                        else:
                            text, tokens, finish = decode_reply(blob, char_limit)
                    except _Unusable as bad:
                        self._count(ep, f"unusable_{bad.kind}")
                        last = f"unusable reply ({bad.kind}): {bad}"
                    else:
                        self._count(ep, "ok")
                        return Completion(text=text, tokens=tokens, latency_s=latency, finish_reason=finish)
                else:
                    self._count(ep, f"http_{status}")
                    last = f"HTTP {status}: {_one_line(blob.decode('utf-8', 'replace'))}"
                    if status >= 500:
                        self._attempt_failed(ep)
                    else:
                        self._alive(ep)
                    if status not in _RETRY_STATUSES and status < 500:
                        return self._fail(ep, last)  # bad request/model/key: retrying cannot help
                    retry_after = _retry_after_s(headers.get("retry-after"))
            if attempt < self.max_retries:
                self._count(ep, "retries")
                others = [e for e in eps if e is not ep and not e.health.is_open()]
                if not others or retry_after is not None:  # no other live replica: back off
                    await asyncio.sleep(self._backoff_s(attempt, retry_after))
            attempt += 1
        return self._fail(eps[0] if len(eps) == 1 else ep, f"failed after {attempts} attempts, last: {last}")

    # -- public API -----------------------------------------------------------------------------------------

    async def acomplete(
        self,
        requests: list[ChatRequest],
        strategy: Strategy,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        """Send every request concurrently (bounded by the endpoint limiter); same order as ``requests``.

        Never raises for endpoint trouble: failed requests come back with ``error`` set.
        """
        if not requests:
            return []
        client = self._client()
        eps = [_endpoint(u, self.concurrency) for u in self.base_urls]

        async def run(req: ChatRequest) -> Completion:
            out = await self._complete_one(client, eps, req, strategy)
            if progress is not None:
                progress(1)
            return out

        return list(await asyncio.gather(*(run(r) for r in requests)))

    def complete(self, requests: list[ChatRequest], strategy: Strategy) -> list[Completion]:
        """Synchronous wrapper: runs :meth:`acomplete` in a fresh event loop and closes its connections."""

        async def run() -> list[Completion]:
            try:
                return await self.acomplete(requests, strategy)
            finally:
                await self.aclose()

        return asyncio.run(run())

    async def aclose(self) -> None:
        """Close the HTTP connections opened in the running event loop."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        entry = self._clients.pop(id(loop), None) if loop is not None else None
        if entry is not None:
            await entry[1].aclose()
