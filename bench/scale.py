"""The arena at scale: a synthetic arena of 1,000,000 battles through the real run store, on this machine.

Contestants are in-process replay backends (each answer is a short text of its model and prompt) and the judge
is a fast synthetic one (each model has a latent strength; a judgment scores both answers with that strength
plus deterministic noise from a hash of the answer), so the figures measure the driver and the store, not a
model: battles/s sustained, peak memory, store size, the time to resume after a SIGKILL mid-run, the time
to rerun a finished run, the Bradley-Terry fit (100 bootstrap rounds) over all the battles, and what a user
pays for ``banditarena leaderboard RUN`` on the finished run (raw and style-controlled ratings; its own process,
wall time and peak memory). The fitted ratings are checked against the latent strengths (Spearman).

    .venv/bin/python bench/scale.py --battles 1000000 --models 20
    .venv/bin/python bench/scale.py --battles 1000000 --models 100
    .venv/bin/python bench/scale.py --child RUN_DIR N_PROMPTS N_MODELS   # (internal: one run, as a process)
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from banditarena.judges.base import Judge, JudgeRequest
from banditarena.models.base import Backend, ChatRequest
from banditarena.types import Completion, Judgment, Prompt, Strategy


def strength(model: str) -> float:
    return int(model.split("-")[1]) / 10.0  # m-000 weakest ... m-099 strongest


class SyntheticReplay(Backend):
    """An answer per (model, prompt), made up on the spot (a replay backend without a file); its length varies."""

    kind = "replay"

    async def acomplete(self, requests: list[ChatRequest], strategy: Strategy,
                        progress: Callable[[int], None] | None = None) -> list[Completion]:
        out = []
        for r in requests:  # answers of 4-35 words, so the leaderboard's style-controlled fit has lengths to use
            extra = hashlib.blake2b(f"{self.model}/{r.prompt_id}".encode(), digest_size=1).digest()[0] % 32
            out.append(Completion(text=f"{self.model} answers {r.prompt_id}" + " and more" * (extra // 2),
                                  tokens=4 + extra))
        return out


class LatentJudge(Judge):
    """score = latent strength of the answer's model + N(0, 1) noise from a hash of the answer."""

    name = "latent"
    version = "latent-1"
    batch_size = 4096

    @staticmethod
    def _noise(text: str) -> float:
        u = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2**64
        u = min(max(u, 1e-12), 1 - 1e-12)
        return math.sqrt(2) * _erfinv(2 * u - 1)

    async def ajudge(self, requests: list[JudgeRequest], progress: Callable[[int], None] | None = None) -> list[Judgment]:
        out = []
        for r in requests:
            a, b = r.first, r.second
            out.append(Judgment(self.name, r.prompt.id, a.contestant, b.contestant,
                                score_first=strength(a.contestant) + self._noise(a.text),
                                score_second=strength(b.contestant) + self._noise(b.text)))
        return out


def _erfinv(y: float) -> float:  # Giles' approximation, enough for synthetic noise
    w = -math.log((1.0 - y) * (1.0 + y))
    if w < 5.0:
        w -= 2.5
        p = 2.81022636e-08
        for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                  -0.00417768164, 0.246640727, 1.50140941):
            p = c + p * w
    else:
        w = math.sqrt(w) - 3.0
        p = -0.000200214257
        for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                  0.00943887047, 1.00167406, 2.83297682):
            p = c + p * w
    return p * y


def vm_hwm_mb() -> float:
    """This process's peak RSS in MB (Linux's VmHWM; ru_maxrss would carry the spawning parent's across exec)."""
    try:
        return int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(run_dir: str, n_prompts: int, n_models: int) -> None:
    """One run of the arena (a separate process, so it can be killed and its memory measured)."""
    from banditarena.arena.runner import Arena, schedule
    from banditarena.store import RunStore

    models = [f"m-{i:03d}" for i in range(n_models)]
    prompts = [Prompt(f"q{i:07d}", [{"role": "user", "content": f"question {i}"}]) for i in range(n_prompts)]
    from banditarena.types import Contestant

    contestants = [Contestant(m, "replay", m) for m in models]
    store = RunStore(run_dir)
    arena = Arena(store, contestants, LatentJudge(), backends={m: SyntheticReplay(m) for m in models}, tag="scale",
                  keep_battles=False)
    t0 = time.perf_counter()
    res = arena.run(schedule(prompts, models, pairs="all"))
    sec = time.perf_counter() - t0
    peak = vm_hwm_mb()
    print(f"RESULT battles={res.n_battles} paid={res.paid_judgments} seconds={sec:.2f} peak_mb={peak:.0f}", flush=True)


def run_child(run_dir: Path, n_prompts: int, n_models: int, kill_after: float | None = None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", str(run_dir), str(n_prompts), str(n_models)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        return {"seconds": time.perf_counter() - t0, "killed": 1.0}
    out, _ = proc.communicate()
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    fig = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    fig["wall"] = time.perf_counter() - t0
    return fig


LEADERBOARD_CHILD = """
import atexit, os, sys
def peak():  # VmHWM: this process's own peak RSS (ru_maxrss would carry the spawning parent's across exec)
    hwm = next(x for x in open('/proc/self/status') if x.startswith('VmHWM:'))
    open(os.environ['SCALE_BENCH_HWM'], 'w').write(hwm.split()[1])
atexit.register(peak)
from banditarena.cli import main
sys.argv[0] = 'banditarena'
main()
"""


def leaderboard_cli(run_dir: Path) -> dict[str, float]:
    """``banditarena leaderboard RUN`` as its own process: wall time and its own peak RSS (Linux's VmHWM)."""
    hwm = run_dir.parent / "leaderboard.hwm"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "SCALE_BENCH_HWM": str(hwm)}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", LEADERBOARD_CHILD, "leaderboard", str(run_dir), "--json"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"banditarena leaderboard {run_dir} failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return {"wall": wall, "peak_mb": int(hwm.read_text()) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--kill-at", type=float, default=0.5, help="SIGKILL the resume run at this share of the full time")
    ap.add_argument("--keep", type=Path, help="keep the finished run directory here (default: deleted)")
    ap.add_argument("--child", nargs=3, metavar=("RUN_DIR", "N_PROMPTS", "N_MODELS"))
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    pairs = args.models * (args.models - 1) // 2
    n_prompts = max(1, round(args.battles / pairs))
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        full = run_child(tmp / "full", n_prompts, args.models)
        store_mb = sum(f.stat().st_size for f in (tmp / "full").glob("run.sqlite*")) / 2**20
        rerun = run_child(tmp / "full", n_prompts, args.models)
        run_child(tmp / "killed", n_prompts, args.models, kill_after=full["wall"] * args.kill_at)
        resumed = run_child(tmp / "killed", n_prompts, args.models)

        import pandas as pd

        from banditarena.ratings import fit_bt, spearman
        from banditarena.store import RunStore

        store = RunStore(tmp / "full", create=False)
        t0 = time.perf_counter()
        battles = store.battles("scale", valid_only=True)[["model_a", "model_b", "winner"]]
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        lb = fit_bt(battles, bootstrap=100, seed=0)
        fit_s = time.perf_counter() - t0
        truth = pd.DataFrame({"rating": {m: strength(m) for m in lb.index}})
        rho = spearman(lb, truth)
        store.close()
        cli = leaderboard_cli(tmp / "full")
        if args.keep:
            shutil.move(str(tmp / "full"), str(args.keep))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nScale: {int(full['battles']):,} battles = {n_prompts:,} prompts x {pairs:,} pairs of {args.models} models "
          f"(both orders judged: {2 * int(full['battles']):,} judgments); load average {os.getloadavg()[0]:.1f}")
    print(f"{'measure':<46}{'value':>16}")
    rows = [
        ("battles/s, fresh run (driver + store)", f"{full['battles'] / full['seconds']:,.0f}"),
        ("wall time, fresh run", f"{full['wall']:.1f} s"),
        ("peak memory (RSS), fresh run", f"{full['peak_mb']:,.0f} MB"),
        ("store size (run.sqlite + WAL)", f"{store_mb:,.0f} MB"),
        ("rerun of the finished run (pays nothing)", f"{rerun['wall']:.1f} s, paid {int(rerun['paid'])}"),
        (f"resume after a SIGKILL at {args.kill_at:.0%} of the run", f"{resumed['wall']:.1f} s"),
        ("battles after the resume", f"{int(resumed['battles']):,}"),
        ("load the valid battles from the store", f"{load_s:.1f} s"),
        ("Bradley-Terry fit, 100 bootstrap rounds", f"{fit_s:.1f} s"),
        ("Spearman(fitted ratings, latent strengths)", f"{rho:.3f}"),
        ("`banditarena leaderboard RUN` (raw + style)", f"{cli['wall']:.1f} s"),
        ("  its peak memory (RSS)", f"{cli['peak_mb']:,.0f} MB"),
    ]
    for k, v in rows:
        print(f"{k:<46}{v:>16}")


if __name__ == "__main__":
    main()
