"""Load test of the human vote page: simulated voters on loopback against the real `banditarena vote serve`.

Starts the server as users do (``python -m banditarena.cli vote serve RECIPE --run-dir RUN``, one process,
replayed answers) and runs ``--voters`` simulated voters for ``--duration`` seconds. Each voter is its own
browser: its own keep-alive connection (a minimal HTTP/1.1 client, so the load generator, on the same 2 cores,
costs little), its own cookie and its own loopback address (127.0.x.y, so the per-address rate limits apply as
they would to people on different machines); it loads a battle (GET /), reads for a think time drawn
uniformly from ``--think`` seconds, and votes (POST /vote with the page's ticket and CSRF token, answered in
JSON). The vote latency is the POST's, from sending it to its acknowledgement (the vote is committed before
the server answers); the page latency is the GET's.

``--kill-at T`` SIGKILLs the server T seconds in and starts it again at once on the same run directory (the
run lock of the killed holder is taken over). Voters whose request failed wait and go on; a vote POST cut
by the kill is sent again with the same ticket once the server is back (200: stored now; 409: it had been
stored before the kill, its acknowledgement lost).

At the end the run store is read: every acknowledged vote must be stored exactly once (one vote row and one
human battle per vote id), and the votes stored but never acknowledged (cut by the kill) are counted.
Prints a table. Target (issue 30): p99 vote latency <= 100 ms with 200 voters on 2 cores, 0 acknowledged
votes lost or doubled, across a SIGKILL.

    .venv/bin/python bench/vote_load.py --voters 200 --duration 60 --kill-at 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "src" / "banditarena" / "recipes" / "vote-arena-hard.yaml"
TICKET = re.compile(r'name="ticket" value="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, recipe: Path, run_dir: Path, port: int) -> None:
        self.recipe, self.run_dir, self.port = recipe, run_dir, port
        self.proc: subprocess.Popen | None = None
        self.log = open(run_dir.parent / "server.log", "ab")  # noqa: SIM115

    def start(self) -> float:
        t = time.perf_counter()
        env = {**os.environ, "BANDITARENA_VOTE_ADMIN_TOKEN": "bench-admin-token-0123456789"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "banditarena.cli", "vote", "serve", str(self.recipe), "--run-dir",
             str(self.run_dir), "--port", str(self.port), "--no-progress"],
            stdout=self.log, stderr=self.log, env=env, cwd=ROOT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/static/vote.css", timeout=1).status_code == 200:
                    return time.perf_counter() - t
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise SystemExit("the server did not start in 120 s")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Stats:
    def __init__(self) -> None:
        self.vote_ms: list[tuple[float, float]] = []      # (time sent, ms)
        self.page_ms: list[tuple[float, float]] = []
        self.acked: list[str] = []
        self.confirmed_by_409: list[str] = []
        self.errors: Counter[str] = Counter()
        self.status: Counter[str] = Counter()


class Conn:
    """A minimal HTTP/1.1 keep-alive client for one voter (the load generator shares the 2 cores with the
    server, so it must cost little): its own loopback source address, its own cookie."""

    def __init__(self, port: int, addr: str) -> None:
        self.port, self.addr = port, addr
        self.cookie = ""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"", json_answer: bool = False
                      ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port, local_addr=(self.addr, 0)), 10)
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        if self.cookie:
            head.append(f"Cookie: {self.cookie}")
        if json_answer:
            head.append("Accept: application/json")
        if method == "POST":
            head += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        try:
            assert self.reader is not None and self.writer is not None
            self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            await self.writer.drain()
            status_line = await asyncio.wait_for(self.reader.readline(), 10)
            if not status_line:
                raise ConnectionError("closed")
            status = int(status_line.split()[1])
            length, close = 0, False
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                k, v = k.strip().lower(), v.strip()
                if k == "content-length":
                    length = int(v)
                elif k == "set-cookie" and v.startswith("vote_session="):
                    self.cookie = v.split(";", 1)[0]
                elif k == "connection" and v.lower() == "close":
                    close = True
            data = await asyncio.wait_for(self.reader.readexactly(length), 10) if length else b""
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError):
            await self.close()
            raise
        if close:
            await self.close()
        return status, data


async def voter(k: int, port: int, stop_at: float, think: tuple[float, float], st: Stats, seed: int) -> None:
    from urllib.parse import urlencode

    rng = random.Random(seed * 100_003 + k)
    c = Conn(port, f"127.0.{1 + k // 250}.{1 + k % 250}")
    await asyncio.sleep(rng.uniform(0, think[1]))          # voters arrive spread out, not in one burst
    while time.monotonic() < stop_at:
        try:
            t0 = time.perf_counter()
            status, page = await c.request("GET", "/")
            st.page_ms.append((time.monotonic(), 1000 * (time.perf_counter() - t0)))
            st.status[f"GET {status}"] += 1
            if status != 200:
                await asyncio.sleep(1.0)
                continue
            text = page.decode()
            ticket, csrf = TICKET.search(text), CSRF.search(text)
            if not ticket or not csrf:
                st.errors["page without a battle"] += 1
                await asyncio.sleep(1.0)
                continue
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError) as exc:
            st.errors[f"GET {type(exc).__name__}"] += 1
            await asyncio.sleep(0.5)
            continue
        await asyncio.sleep(rng.uniform(*think))
        form = {"csrf_token": csrf.group(1), "ticket": ticket.group(1),
                "choice": rng.choice(("a", "b", "a", "b", "tie", "bothbad"))}
        body = urlencode(form).encode()
        for attempt in range(20):
            try:
                t0 = time.perf_counter()
                status, data = await c.request("POST", "/vote", body, json_answer=True)
                ms = 1000 * (time.perf_counter() - t0)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError) as exc:
                st.errors[f"POST {type(exc).__name__}"] += 1      # cut by the kill: the same ticket again
                await asyncio.sleep(0.5)
                continue
            st.status[f"POST {status}"] += 1
            answer = json.loads(data) if data else {}
            if status == 200:
                st.vote_ms.append((time.monotonic() - ms / 1000, ms))
                st.acked.append(answer["vote_id"])
            elif status == 409 and attempt > 0 and answer.get("reason") == "already voted":
                st.confirmed_by_409.append(form["ticket"])
            break
    await c.close()


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


def check_store(run_dir: Path, acked: list[str]) -> dict[str, int]:
    con = sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True)
    ids = Counter(r[0] for r in con.execute("SELECT vote_id FROM votes"))
    battles = Counter(r[0] for r in con.execute("SELECT battle_id FROM battles WHERE judge='human'"))
    con.close()
    ack = Counter(acked)
    return {"stored votes": sum(ids.values()),
            "acknowledged": len(acked),
            "acknowledged twice (same vote id)": sum(1 for n in ack.values() if n > 1),
            "acknowledged, not stored (lost)": sum(1 for v in ack if v not in ids),
            "acknowledged, stored more than once": sum(1 for v in ack if ids.get(v, 0) > 1 or battles.get(v, 0) > 1),
            "votes without exactly one human battle": sum(1 for v in ids if battles.get(v, 0) != 1),
            "stored, never acknowledged (cut by the kill)": sum(1 for v in ids if v not in ack)}


async def main_async(args: argparse.Namespace) -> None:
    work = Path(args.run_dir or tempfile.mkdtemp(prefix="vote-load-"))
    run_dir = work / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = Server(Path(args.recipe), run_dir, port)
    started = server.start()
    st = Stats()
    t_start = time.monotonic()
    stop_at = t_start + args.duration
    downtime = 0.0
    window = (float("inf"), float("inf"))        # from the kill to 5 s after the restart

    async def killer() -> None:
        nonlocal downtime, window
        if args.kill_at is None:
            return
        await asyncio.sleep(args.kill_at)
        t = time.perf_counter()
        t_kill = time.monotonic()
        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)
        downtime = time.perf_counter() - t
        window = (t_kill, time.monotonic() + 5.0)

    think = (args.think[0], args.think[1])
    await asyncio.gather(killer(), *(voter(k, port, stop_at, think, st, args.seed) for k in range(args.voters)))
    elapsed = time.monotonic() - t_start
    server.stop()
    store = check_store(run_dir, st.acked)
    load = os.getloadavg()
    print(f"\nvote load test: {args.voters} voters, {args.duration:.0f} s, think time {think[0]}-{think[1]} s, "
          f"recipe {Path(args.recipe).name}, {os.cpu_count()} CPUs, load average {load[0]:.2f} after the run")
    print(f"server start {started:.1f} s" + (f"; SIGKILL at {args.kill_at:.0f} s, back after {downtime:.1f} s"
                                             if args.kill_at is not None else ""))
    print("| request | count | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    def rows(name: str, pairs: list[tuple[float, float]]) -> None:
        parts = [("all", [ms for _, ms in pairs])]
        if args.kill_at is not None:
            parts += [("outside the restart window", [ms for t, ms in pairs if not window[0] <= t < window[1]]),
                      ("kill to 5 s after the restart", [ms for t, ms in pairs if window[0] <= t < window[1]])]
        for part, xs in parts:
            print(f"| {name}, {part} | {len(xs)} | {pct(xs, 50):.1f} | {pct(xs, 90):.1f} | {pct(xs, 99):.1f} | "
                  f"{max(xs) if xs else float('nan'):.1f} |")

    rows("vote (POST /vote, acknowledged)", st.vote_ms)
    rows("page (GET /)", st.page_ms)
    print(f"\nvotes acknowledged per second: {len(st.acked) / elapsed:.1f}")
    print("responses: " + ", ".join(f"{k} x{n}" for k, n in sorted(st.status.items())))
    if st.errors:
        print("client errors (the kill): " + ", ".join(f"{k} x{n}" for k, n in sorted(st.errors.items())))
    if st.confirmed_by_409:
        print(f"re-sent after the kill and answered 409 already voted: {len(st.confirmed_by_409)}")
    print("| run store check | count |")
    print("|---|---|")
    for k, v in store.items():
        print(f"| {k} | {v} |")
    ok = (store["acknowledged, not stored (lost)"] == 0 and store["acknowledged, stored more than once"] == 0
          and store["acknowledged twice (same vote id)"] == 0 and store["votes without exactly one human battle"] == 0)
    p99 = pct([ms for _, ms in st.vote_ms], 99)
    print(f"\ntarget p99 <= 100 ms (all acknowledged votes): {'met' if p99 <= 100 else 'MISSED'} ({p99:.1f} ms); "
          f"no acknowledged vote lost or doubled: {'met' if ok else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--voters", type=int, default=200)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--think", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                    help="seconds a voter reads before voting (uniform)")
    ap.add_argument("--kill-at", type=float, default=None, help="SIGKILL the server this many seconds in")
    ap.add_argument("--recipe", default=str(RECIPE))
    ap.add_argument("--run-dir", default=None, help="work folder (default: a new temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
