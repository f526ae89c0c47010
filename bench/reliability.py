"""Reliability under faults, measured: one table per promise of the run store and the OpenAI client.

1. **Faulty replies**: an arena (3 contestants + an LLM judge, 8 MT-Bench prompts, 2 turns: 48 generation
   and 48 judge requests) against the tests' fake OpenAI-compatible server answering 20% of requests with one
   fault kind (and all kinds mixed): battles completed in the FIRST run, garbage rows stored (answers that are
   not the server's real answer, null or oversized), retries counted by kind, wall time.
2. **SIGKILL at random moments**: 5 kills of ``banditarena battle`` after a random number of answered
   requests (seeded), then one run to the end: is the leaderboard the uninterrupted run's, how many requests
   were paid twice, and how many were in flight at the kills (sent, not answered 50 ms before the kill).
3. **Bad input**: each case's exit status, the number of lines it printed, and whether the run directory is
   byte-identical afterwards.
4. **Happy path speed**: the replay arena over arena_bench_v1 (8 models, 300 prompts, all pairs: 8,400 battles
   judged by GPT-4's recorded scores) through the real store, in battles/s (the overhead of the OpenAI client
   against a plain httpx client is measured by ``bench/arena_throughput.py``).

    .venv/bin/python bench/reliability.py [--only faults,sigkill,bad,speed] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.arena.test_arena_endpoints import recipe_text, write_recipe
from tests.reliability.test_commands import _bad_cases, cli, snapshot
from tests.reliability.test_faults import KINDS, STAT
from tests.reliability.test_sigkill import kill_and_resume
from tests.support.openai_server import FakeOpenAIServer


def faults(tmp: Path, seed: int) -> None:
    from banditarena.arena.service import run_battles
    from banditarena.config import load_recipe

    print("\n1. Faulty replies at 20% (16 prompts x 3 contestants, 2 turns; LLM judge; 10 retries, 1 s deadline)")
    print(f"{'fault':<15}{'faulty replies':>18}{'battles 1st run':>17}{'garbage rows':>14}{'retried as':>30}{'wall s':>8}")
    for kind in [*KINDS, "mixed"]:
        fz = {k: 0.2 / len(KINDS) for k in KINDS} if kind == "mixed" else {kind: 0.2}
        d = tmp / f"faults-{kind}"
        d.mkdir()
        with FakeOpenAIServer(faults=fz, seed=seed, trickle_s=3.0, quiet=True) as srv:
            rec = load_recipe(write_recipe(d, recipe_text(srv.base_url, n=16, timeout=1.0, retries=10)))
            t0 = time.perf_counter()
            res, store = run_battles(rec, d / "run", progress=False)
            wall = time.perf_counter() - t0
            sent = sum(v for k, v in srv.counts.items() if k in KINDS)
            received = srv.counts["received"]
        rows = store.conn.execute("SELECT text FROM completions").fetchall()
        garbage = sum(1 for (t,) in rows if not t.startswith(("[", "Rationale:")) or len(t) > 2000)
        garbage += store.counts()["invalid_judgments"]
        kinds = KINDS if kind == "mixed" else [kind]
        counted = {v: res.request_stats[v] for v in dict.fromkeys(STAT[k] for k in kinds) if res.request_stats[v]}
        retried = ", ".join(f"{n} {k}" for k, n in counted.items()) if kind != "mixed" else \
            f"{sum(counted.values())} over {len(counted)} kinds"
        share = f"{sent}/{received} ({sent / max(received, 1):.0%})"
        print(f"{kind:<15}{share:>18}{f'{len(res.battles)}/{res.n_scheduled}':>17}{garbage:>14}{retried:>30}{wall:>8.1f}")
        store.close()


def sigkill(tmp: Path, seed: int) -> None:
    print("\n2. Five SIGKILLs at random moments, then resume (8 prompts x 3 contestants, concurrency 2)")
    with FakeOpenAIServer(latency_s=0.03) as srv:
        p = write_recipe(tmp, recipe_text(srv.base_url, n=8, concurrency=2))
        assert cli("battle", p, "--run-dir", tmp / "ref", "--no-progress").returncode == 0
        ref_unique = len(srv.requests)
        fig = kill_and_resume(srv, p, tmp / "killed", kills=5, seed=seed)
    same = json.loads(cli("leaderboard", tmp / "killed", "--json").stdout) == \
        json.loads(cli("leaderboard", tmp / "ref", "--json").stdout)
    print(f"{'leaderboard = uninterrupted':<30}{'requests':>10}{'paid twice':>12}{'in flight at kills':>20}")
    asked = f"{fig['unique']}/{ref_unique}"
    print(f"{same!s:<30}{asked:>10}{fig['repaid']:>12}{fig['in_flight_at_kills']:>20}")


def bad(tmp: Path) -> None:
    print("\n3. Bad input (run directory of a finished run)")
    with FakeOpenAIServer() as srv:
        p = write_recipe(tmp, recipe_text(srv.base_url, n=3))
        assert cli("battle", p, "--run-dir", tmp / "run", "--no-progress").returncode == 0
    run = tmp / "run"
    before = snapshot(run)
    print(f"{'case':<24}{'exit':>6}{'lines':>7}{'unchanged':>11}  message")
    for name, args, _ in _bad_cases(tmp, p, run):
        out = cli(*args)
        err = out.stderr.strip()
        print(f"{name:<24}{out.returncode:>6}{len(err.splitlines()):>7}{snapshot(run) == before!s:>11}  {err[:90]}")
    empty = tmp / "empty"
    empty.mkdir()
    (empty / "run.sqlite").write_bytes(b"")
    out = cli("leaderboard", empty)
    print(f"{'0-byte run.sqlite':<24}{out.returncode:>6}{len(out.stderr.strip().splitlines()):>7}"
          f"{(empty / 'run.sqlite').stat().st_size == 0!s:>11}  {out.stderr.strip()[:90]}")
    import os

    damaged = tmp / "damaged"
    damaged.mkdir()
    blob = bytearray((run / "run.sqlite").read_bytes())
    blob[4096:] = os.urandom(len(blob) - 4096)  # garbage from the second page on
    (damaged / "run.sqlite").write_bytes(bytes(blob))
    before = snapshot(damaged)
    out = cli("leaderboard", damaged)
    print(f"{'garbage in run.sqlite':<24}{out.returncode:>6}{len(out.stderr.strip().splitlines()):>7}"
          f"{snapshot(damaged) == before!s:>11}  {out.stderr.strip()[:90]}")


def speed(tmp: Path) -> None:
    from banditarena.arena.service import run_battles
    from banditarena.config import ArenaRecipe
    from banditarena.judges.recorded import RecordedJudge
    from banditarena.paths import data_dir

    models = ["gpt-3.5-turbo", "claude-2", "gpt-3.5-turbo-1106", "claude-instant-1", "claude-1", "vicuna-33b-v1.3",
              "Llama-2-70b-chat", "palm-2-chat-bison-001"]
    rec = ArenaRecipe.model_validate({
        "name": "speed", "prompts": {"source": "arena_bench_v1"},
        "contestants": [{"name": m, "backend": "replay", "path": f"data:arena_bench_v1/model_answer/{m}.jsonl"}
                        for m in models],
        "judge": {"kind": "similarity"}, "battle": {"pairs": "all"}})
    judge = RecordedJudge(sorted((data_dir() / "arena_bench_v1" / "model_judgment").glob("*.jsonl")))
    print("\n4. Happy path: replay arena over arena_bench_v1 (8 models x 300 prompts, all pairs, recorded GPT-4 judge)")
    print(f"{'run':<22}{'battles':>9}{'seconds':>9}{'battles/s':>11}")
    for label in ("fresh run dir", "resume (all stored)"):
        t0 = time.perf_counter()
        res, store = run_battles(rec, tmp / "speed", progress=False, judge=judge)
        sec = time.perf_counter() - t0
        store.close()
        print(f"{label:<22}{len(res.battles):>9}{sec:>9.2f}{len(res.battles) / sec:>11.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="faults,sigkill,bad,speed")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-reliability-"))
    try:
        for part in args.only.split(","):
            d = tmp / part
            d.mkdir()
            if part == "faults":
                faults(d, args.seed)
            elif part == "sigkill":
                sigkill(d, args.seed + 11)
            elif part == "bad":
                bad(d)
            else:
                speed(d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
