"""Throughput of the arena's model path against a real llama.cpp server, vs the server's own saturation.

Starts llama-cpp-python's OpenAI-compatible server on the embedded SmolLM2 GGUF (127.0.0.1, a free port),
then, for each client concurrency c, sends the same chat requests (same prompts, max_tokens, greedy,
fixed seed) through

* ``plain``  - a minimal async httpx client (a semaphore of c and ``client.post``): what the server can do;
* ``openai_backend`` - :meth:`banditarena.models.OpenAIBackend.acomplete` at concurrency c (limiter,
  retries, timeouts, parsing, breaker bookkeeping);

in interleaved rounds (ABBA order: plain, backend, backend, plain, ...), and prints requests/s (best and
median round), the client's CPU time per request, and the backend's overhead: ``1 - median over rounds of
(backend req/s / plain req/s)`` with both measured back to back in the same round (pairing cancels most of
the drift of a shared, noisy machine). Target: <= 10 %.

Server settings: llama-cpp-python's server runs one completion at a time (an internal lock; it has no
``n_parallel`` slots), so its saturation throughput is reached at c = 1 already and higher c only queues
requests on the server; ``--n_threads`` = all cores of the machine, ``--n_ctx 2048``. Both paths see the
same queueing, so the comparison is fair at every c.

``--fake`` replaces llama.cpp with the tests' instant fake server (tests/support/fault_server.py, in its own
process): the model costs nothing there, so the table shows the most requests/s each client path can drive,
i.e. its per-request cost, free of the model's service-time noise.

``arena`` - whole battles through :class:`banditarena.arena.runner.Arena` (run store, cache keys, chunking,
judging both orders with the offline verifier), counted in generation requests (2 per battle).

Adding a path: write ``async def measure_x(ctx: BenchContext, c: int) -> Measure``
and add it to ``PATHS``; main() prints one row per path and concurrency.

    .venv/bin/python bench/arena_throughput.py --concurrency 1,8 --requests 16 --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from banditarena.models import OpenAIBackend
from banditarena.models.base import ChatRequest
from banditarena.models.hub import smollm2_gguf
from banditarena.models.llamacpp import LlamaCppServer
from banditarena.types import Strategy

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass
class BenchContext:
    base_url: str
    requests: list[ChatRequest]
    strategy: Strategy
    model: str = "smollm2-135m-instruct"


@dataclass
class Measure:
    n: int  # units completed (requests, battles...)
    seconds: float
    failed: int = 0
    tokens: int = 0
    cpu_s: float = 0.0  # client-process CPU time (filled in by run_path)

    @property
    def per_s(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class Row:
    path: str
    concurrency: int
    rounds: list[Measure] = field(default_factory=list)

    @property
    def best(self) -> float:
        return max(m.per_s for m in self.rounds)

    @property
    def median(self) -> float:
        return statistics.median(m.per_s for m in self.rounds)


def load_prompts(n: int) -> list[str]:
    """Short real prompts: Vicuna-bench questions (fall back to generated ones without the shared data)."""
    path = DATA / "vicuna_bench" / "question.jsonl"
    if path.exists():
        from banditarena.text import iter_jsonl

        qs = [r["turns"][0] for _, r in iter_jsonl(path)]
    else:
        qs = [f"Give me one tip about topic number {i}." for i in range(n)]
    return [qs[i % len(qs)] for i in range(n)]


async def measure_plain(ctx: BenchContext, c: int) -> Measure:
    """The server's own throughput: a bare async httpx client, c requests in flight."""
    sem = asyncio.Semaphore(c)
    s = ctx.strategy
    failed = tokens = 0
    t0 = time.perf_counter()  # client creation included, as in the backend path
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0),
                                 limits=httpx.Limits(max_connections=None, max_keepalive_connections=c)) as client:

        async def one(r: ChatRequest) -> None:
            nonlocal failed, tokens
            body = {"model": ctx.model, "messages": r.messages, "temperature": s.temperature, "top_p": s.top_p,
                    "max_tokens": s.max_tokens, "seed": r.seed}
            async with sem:
                resp = await client.post(ctx.base_url + "/chat/completions", json=body)
            if resp.status_code != 200:
                failed += 1
            else:
                tokens += int(resp.json()["usage"]["completion_tokens"])

        await asyncio.gather(*(one(r) for r in ctx.requests))
        dt = time.perf_counter() - t0
    return Measure(len(ctx.requests) - failed, dt, failed, tokens)


async def measure_openai_backend(ctx: BenchContext, c: int) -> Measure:
    """The arena's model path: OpenAIBackend.acomplete with concurrency c."""
    backend = OpenAIBackend(ctx.model, ctx.base_url, concurrency=c, timeout_s=600.0)
    try:
        t0 = time.perf_counter()
        out = await backend.acomplete(ctx.requests, ctx.strategy)
        dt = time.perf_counter() - t0
    finally:
        await backend.aclose()
    failed = sum(not o.ok for o in out)
    return Measure(len(out) - failed, dt, failed, sum(o.tokens for o in out))


async def measure_arena(ctx: BenchContext, c: int) -> Measure:
    """Whole arena battles: half the prompts, two contestants (two strategies of the served model), so the
    same number of generation requests as the other paths; every answer is content-addressed, written to a
    fresh run store and judged in both orders by the offline verifier (no server work). Counted in requests,
    so it compares with the plain client directly; battles/s is half of it."""
    import dataclasses
    import tempfile

    from banditarena.arena.runner import Arena, Match
    from banditarena.judges import VerifierJudge
    from banditarena.store import RunStore
    from banditarena.types import Contestant, Prompt

    backend = OpenAIBackend(ctx.model, ctx.base_url, concurrency=c, timeout_s=600.0)
    a = Contestant("a", "openai", ctx.model, ctx.strategy)
    b = Contestant("b", "openai", ctx.model, dataclasses.replace(ctx.strategy, name="brief", system_prompt="Be brief."))
    prompts = [Prompt(r.prompt_id, r.messages, reference="0") for r in ctx.requests[: len(ctx.requests) // 2]]
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        arena = Arena(store, [a, b], VerifierJudge(), backends={"a": backend, "b": backend}, max_in_flight=c)
        try:
            t0 = time.perf_counter()
            res = await arena.arun([Match(p, "a", "b") for p in prompts])
            dt = time.perf_counter() - t0
        finally:
            await backend.aclose()
            store.close()
    return Measure(2 * len(res.battles), dt, res.n_generation_failures, 0)


PATHS: dict[str, Callable[[BenchContext, int], Awaitable[Measure]]] = {
    "plain": measure_plain,
    "openai_backend": measure_openai_backend,
    "arena": measure_arena,
}
BASELINE = "plain"


def run_path(fn: Callable[[BenchContext, int], Awaitable[Measure]], ctx: BenchContext, c: int) -> Measure:
    cpu0 = time.process_time()
    m = asyncio.run(fn(ctx, c))
    m.cpu_s = time.process_time() - cpu0
    return m


def overhead_pct(row: Row, base: Row) -> float:
    """1 - median of the per-round throughput ratio row/base, in percent (positive: row is slower)."""
    ratios = [m.per_s / b.per_s for m, b in zip(row.rounds, base.rounds)]
    return 100.0 * (1.0 - statistics.median(ratios))


def print_table(rows: list[Row], unit: str = "req/s") -> None:
    base = {r.concurrency: r for r in rows if r.path == BASELINE}
    header = (f"{'path':<16} {'c':>3} {'best ' + unit:>12} {'median':>9} {'tokens/s':>9} {'cpu ms/unit':>11} "
              f"{'failed':>6} {'overhead':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        best = max(r.rounds, key=lambda m: m.per_s)
        ref = base.get(r.concurrency)
        over = "" if r.path == BASELINE or ref is None else f"{overhead_pct(r, ref):+.1f}%"
        cpu = 1000 * sum(m.cpu_s for m in r.rounds) / max(1, sum(m.n + m.failed for m in r.rounds))
        print(f"{r.path:<16} {r.concurrency:>3} {r.best:>12.3f} {r.median:>9.3f} "
              f"{best.tokens / best.seconds:>9.1f} {cpu:>11.2f} {sum(m.failed for m in r.rounds):>6} {over:>9}")


def start_fake_server() -> tuple[subprocess.Popen[str], str]:
    """The instant fake chat server in a child process (so it does not share this process's GIL)."""
    root = Path(__file__).resolve().parents[1]
    code = ("import time; from tests.support.fault_server import FaultServer; s = FaultServer().start(); "
            "print(s.base_url, flush=True); time.sleep(1e9)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concurrency", default="1,8", help="comma-separated client concurrencies")
    ap.add_argument("--requests", type=int, default=16, help="requests per round")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds per path (ABBA order)")
    ap.add_argument("--n-threads", type=int, default=os.cpu_count() or 1, help="llama.cpp server threads")
    ap.add_argument("--base-url", default=None, help="use a running server instead of starting one")
    ap.add_argument("--fake", action="store_true", help="instant fake server instead of llama.cpp (client cost)")
    ap.add_argument("--json", default=None, help="also write the measurements to this JSON file")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",") if x]
    requests = [ChatRequest(f"p{i}", 0, [{"role": "user", "content": q}], seed=i)
                for i, q in enumerate(load_prompts(args.requests))]
    strategy = Strategy(temperature=0.0, max_tokens=args.max_tokens)

    server = None
    fake = None
    if args.fake:
        fake, base_url = start_fake_server()
        label = "instant fake server (tests/support/fault_server.py, separate process, threaded)"
    elif args.base_url is None:
        server = LlamaCppServer(smollm2_gguf(), n_ctx=2048, n_threads=args.n_threads).start()
        base_url = server.base_url
        label = (f"llama.cpp server (llama-cpp-python, SmolLM2-135M-Instruct Q4_1 GGUF, n_threads={args.n_threads},"
                 f" n_ctx=2048, one completion at a time)")
    else:
        base_url = args.base_url
        label = f"server at {base_url}"
    ctx = BenchContext(base_url, requests, strategy)
    try:
        asyncio.run(measure_plain(BenchContext(base_url, requests[:2], strategy), 1))  # warm-up
        rows: list[Row] = []
        for c in levels:
            level_rows = {name: Row(name, c) for name in PATHS}
            for k in range(args.rounds):
                order = list(PATHS.items()) if k % 2 == 0 else list(PATHS.items())[::-1]  # ABBA
                for name, fn in order:
                    m = run_path(fn, ctx, c)
                    level_rows[name].rounds.append(m)
                    print(f"  c={c} round {k + 1}/{args.rounds} {name}: {m.per_s:.3f}/s, {m.failed} failed, "
                          f"cpu {m.cpu_s:.2f}s", file=sys.stderr, flush=True)
            rows.extend(level_rows.values())
    finally:
        if server is not None:
            server.stop()
        if fake is not None:
            fake.terminate()
            fake.wait(timeout=10)

    print(f"{label}; {args.requests} requests/round, max_tokens={args.max_tokens}, greedy; {args.rounds} "
          f"interleaved rounds (ABBA); os.cpu_count()={os.cpu_count()}")
    print_table(rows)
    base = {r.concurrency: r for r in rows if r.path == BASELINE}
    worst = max(overhead_pct(r, base[r.concurrency]) for r in rows if r.path != BASELINE)
    print(f"worst overhead vs the plain client (median of paired rounds): {worst:+.1f}%  (target <= 10%: "
          f"{'PASS' if worst <= 10 else 'FAIL'})")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"path": r.path, "concurrency": r.concurrency, "per_s": [m.per_s for m in r.rounds],
              "cpu_s": [m.cpu_s for m in r.rounds],
              "failed": [m.failed for m in r.rounds], "tokens": [m.tokens for m in r.rounds]} for r in rows],
            indent=1))
    return 0 if worst <= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
