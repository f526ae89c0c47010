"""Endpoint pools under a replica failure: battles/s through 3 healthy replicas vs 4 replicas of which one is
SIGKILLed mid-run (the issue's target: every battle completes, throughput within 30% of 3 healthy replicas).

Each replica is the tests' fake OpenAI-compatible server (arena-aware: judge-format answers for judge calls)
in its own process, with a fixed service time per request (``--service-ms``, default 40 ms) and
``--slots`` requests at a time, so a replica's capacity is slots / service time. The arena (3 contestants,
LLM judge, all behind the same pool) battles on MT-Bench prompts.

    .venv/bin/python bench/pools.py [--prompts 40] [--service-ms 40] [--slots 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

SERVER = """
import sys, time
sys.path.insert(0, {root!r})
from tests.support.openai_server import FakeOpenAIServer
srv = FakeOpenAIServer(latency_s={latency}).start()
print(srv.base_url, flush=True)
while True:
    time.sleep(3600)
"""


def start_replica(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER.format(root=str(ROOT), latency=latency)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def recipe(urls: list[str], n: int, slots: int) -> str:
    ep = f'backend: openai, base_url: {urls!r}, timeout_s: 5, max_retries: 6, concurrency: {slots}, eject_after: 2'
    return textwrap.dedent(f"""
        name: pools
        prompts: {{source: mt_bench, limit: {n}}}
        contestants:
          - {{name: a, model: a-1, {ep}, strategy: {{max_tokens: 32}}}}
          - {{name: b, model: b-1, {ep}, strategy: {{max_tokens: 32}}}}
          - {{name: c, model: c-1, {ep}, strategy: {{max_tokens: 32}}}}
        judge: {{kind: llm, name: j, endpoint: {{model: judge-1, {ep}}}}}
        battle: {{max_in_flight: 256}}
    """)


def run(n_replicas: int, kill_one: bool, args: argparse.Namespace, tmp: Path) -> tuple[float, int, int]:
    import banditarena.models.openai as oa
    from banditarena.arena.service import run_battles
    from banditarena.config import load_recipe

    oa._HEALTH.clear()
    reps = [start_replica(args.service_ms / 1000) for _ in range(n_replicas)]
    try:
        d = Path(tempfile.mkdtemp(dir=tmp))
        (d / "r.yaml").write_text(recipe([u for _, u in reps], args.prompts, args.slots))
        rec = load_recipe(d / "r.yaml")
        if kill_one:  # SIGKILL one replica once the run is under way
            import threading

            def killer() -> None:
                time.sleep(args.kill_after_s)
                reps[-1][0].send_signal(signal.SIGKILL)

            threading.Thread(target=killer, daemon=True).start()
        t0 = time.perf_counter()
        res, store = run_battles(rec, d / "run", progress=False)
        sec = time.perf_counter() - t0
        store.close()
        return len(res.battles) / sec, len(res.battles), res.n_scheduled
    finally:
        for p, _ in reps:
            if p.poll() is None:
                p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=40)
    ap.add_argument("--service-ms", type=float, default=40.0)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kill-after-s", type=float, default=1.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-pools-"))
    rows: dict[str, list[tuple[float, int, int]]] = {"3 healthy replicas": [], "4 replicas, 1 killed mid-run": []}
    try:
        for _ in range(args.rounds):  # interleaved: A B A B ...
            rows["3 healthy replicas"].append(run(3, False, args, tmp))
            rows["4 replicas, 1 killed mid-run"].append(run(4, True, args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nEndpoint pools: {args.prompts} MT-Bench prompts x 3 pairs (2 turns each, LLM judge both orders), "
          f"replica service {args.service_ms:g} ms, {args.slots} slots each; {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'set-up':<32}{'battles/s (median)':>20}{'min':>8}{'max':>8}{'battles done':>14}")
    med = {}
    for name, rs in rows.items():
        bps = [r[0] for r in rs]
        med[name] = statistics.median(bps)
        done = f"{min(r[1] for r in rs)}/{rs[0][2]}"
        print(f"{name:<32}{med[name]:>20.1f}{min(bps):>8.1f}{max(bps):>8.1f}{done:>14}")
    ratio = med["4 replicas, 1 killed mid-run"] / med["3 healthy replicas"]
    print(f"ratio (4 with a death / 3 healthy): {ratio:.2f}  (target >= 0.70)")


if __name__ == "__main__":
    main()
