"""The run store. Pure stdlib sqlite3 + json; pandas only for the DataFrame views."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from banditarena.errors import StoreError
from banditarena.types import Battle, Completion, Generation, Judgment, Prompt

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prompts (
    id TEXT PRIMARY KEY, messages TEXT NOT NULL, category TEXT, cluster TEXT, reference TEXT,
    source TEXT, meta TEXT
);
-- request-level cache: one row per content-addressed model request (one assistant turn)
CREATE TABLE IF NOT EXISTS completions (
    cache_key TEXT PRIMARY KEY, text TEXT NOT NULL, tokens INTEGER, latency_s REAL, created REAL
);
-- failed requests (after the backend's retries); retried on the next run, counted in reports
CREATE TABLE IF NOT EXISTS failures (
    cache_key TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT, prompt_id TEXT, error TEXT, created REAL
);
CREATE TABLE IF NOT EXISTS generations (
    cache_key TEXT PRIMARY KEY, contestant TEXT NOT NULL, prompt_id TEXT NOT NULL, turns TEXT NOT NULL,
    tokens INTEGER, latency_s REAL, created REAL
);
CREATE INDEX IF NOT EXISTS gen_by_contestant ON generations(contestant, prompt_id);
CREATE TABLE IF NOT EXISTS judgments (
    cache_key TEXT PRIMARY KEY, judge TEXT NOT NULL, prompt_id TEXT NOT NULL, first TEXT NOT NULL,
    second TEXT NOT NULL, score_first REAL, score_second REAL, verdict TEXT, rationale TEXT, raw TEXT,
    ok INTEGER NOT NULL, attempts INTEGER, error TEXT, created REAL
);
CREATE TABLE IF NOT EXISTS battles (
    battle_id TEXT PRIMARY KEY, tag TEXT, seq INTEGER, prompt_id TEXT NOT NULL, model_a TEXT NOT NULL,
    model_b TEXT NOT NULL, judge TEXT NOT NULL, winner TEXT, margin REAL, inconsistent INTEGER,
    j_ab TEXT, j_ba TEXT, gen_a TEXT, gen_b TEXT, created REAL
);
CREATE TABLE IF NOT EXISTS decisions (
    run TEXT NOT NULL, step INTEGER NOT NULL, dimension TEXT NOT NULL, policy TEXT, context_hash TEXT,
    arm TEXT NOT NULL, propensity REAL, reward REAL, meta TEXT, PRIMARY KEY (run, step, dimension)
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL);
"""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class RunStore:
    """A run directory's ``run.sqlite``. Cheap to open; every write is its own committed transaction."""

    def __init__(self, run_dir: str | Path, *, create: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "run.sqlite"
        if not self.path.exists() and not create:
            raise StoreError(f"{self.path}: no run store here (run 'banditarena battle RECIPE --run-dir {run_dir}' first)")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=OFF")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable run store ({exc})") from exc
        self.conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
        )

    # ------------------------------------------------------------------ basics
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)

    def _write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn:  # one transaction
            self.conn.execute("BEGIN")
            self.conn.executemany(sql, rows)

    # ------------------------------------------------------------------ meta / state
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_state(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_state(self, key: str, value: Any) -> None:
        self._write(
            "INSERT OR REPLACE INTO state(key, value, updated) VALUES (?, ?, ?)", (key, _dumps(value), time.time())
        )

    # ------------------------------------------------------------------ prompts
    def add_prompts(self, prompts: Iterable[Prompt]) -> None:
        rows = [
            (p.id, _dumps(p.messages), p.category, p.cluster, p.reference, p.source, _dumps(p.meta or {}))
            for p in prompts
        ]
        self._write_many(
            "INSERT OR REPLACE INTO prompts(id, messages, category, cluster, reference, source, meta)"
            " VALUES (?,?,?,?,?,?,?)",
            rows,
        )

    def prompts(self) -> list[Prompt]:
        out = []
        for r in self.conn.execute(
            "SELECT id, messages, category, cluster, reference, source, meta FROM prompts ORDER BY rowid"
        ):
            out.append(
                Prompt(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else {})
            )
        return out

    # ------------------------------------------------------------------ completions (request cache)
    def get_completions(self, keys: Sequence[str]) -> dict[str, Completion]:
        out: dict[str, Completion] = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            q = f"SELECT cache_key, text, tokens, latency_s FROM completions WHERE cache_key IN ({','.join('?' * len(chunk))})"
            for k, text, tokens, lat in self.conn.execute(q, chunk):
                out[k] = Completion(text=text, tokens=tokens or 0, latency_s=lat or 0.0)
        return out

    def put_completions(self, items: Sequence[tuple[str, Completion, str, str]]) -> None:
        """(key, completion, subject, prompt_id) for one chunk, in ONE transaction (all or nothing)."""
        now = time.time()
        with self.conn:
            self.conn.execute("BEGIN")
            for key, c, subject, prompt_id in items:
                if c.ok:
                    self.conn.execute(
                        "INSERT OR REPLACE INTO completions(cache_key, text, tokens, latency_s, created)"
                        " VALUES (?,?,?,?,?)",
                        (key, c.text, c.tokens, c.latency_s, now),
                    )
                else:
                    self.conn.execute(
                        "INSERT INTO failures(cache_key, kind, subject, prompt_id, error, created) VALUES (?,?,?,?,?,?)",
                        (key, "generation", subject, prompt_id, c.error or "unknown error", now),
                    )

    def record_failure(self, key: str, kind: str, subject: str, prompt_id: str, error: str) -> None:
        self._write(
            "INSERT INTO failures(cache_key, kind, subject, prompt_id, error, created) VALUES (?,?,?,?,?,?)",
            (key, kind, subject, prompt_id, error, time.time()),
        )

    def failures(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM failures ORDER BY rowid", self.conn)

    def unresolved_failures(self) -> pd.DataFrame:
        """Failures whose request never succeeded later (neither a completion nor a judgment exists)."""
        import pandas as pd

        return pd.read_sql_query(
            "SELECT kind, subject, prompt_id, error, COUNT(*) AS attempts FROM failures f"
            " WHERE NOT EXISTS (SELECT 1 FROM completions c WHERE c.cache_key = f.cache_key)"
            " AND NOT EXISTS (SELECT 1 FROM judgments j WHERE j.cache_key = f.cache_key)"
            " GROUP BY cache_key ORDER BY MIN(rowid)",
            self.conn,
        )

    # ------------------------------------------------------------------ generations
    def put_generation(self, g: Generation) -> None:
        self._write(
            "INSERT OR REPLACE INTO generations(cache_key, contestant, prompt_id, turns, tokens, latency_s, created)"
            " VALUES (?,?,?,?,?,?,?)",
            (g.cache_key, g.contestant, g.prompt_id, _dumps(g.turns), g.tokens, g.latency_s, time.time()),
        )

    def get_generations(self, keys: Sequence[str]) -> dict[str, Generation]:
        out: dict[str, Generation] = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            q = (
                "SELECT cache_key, contestant, prompt_id, turns, tokens, latency_s FROM generations"
                f" WHERE cache_key IN ({','.join('?' * len(chunk))})"
            )
            for k, c, pid, turns, tok, lat in self.conn.execute(q, chunk):
                out[k] = Generation(c, pid, json.loads(turns), tok or 0, lat or 0.0, k)
        return out

    def generations(self) -> pd.DataFrame:
        import pandas as pd

        df = pd.read_sql_query(
            "SELECT cache_key, contestant, prompt_id, turns, tokens, latency_s FROM generations ORDER BY rowid",
            self.conn,
        )
        df["turns"] = df["turns"].map(json.loads)
        df["text"] = df["turns"].map(lambda t: t[-1] if t else "")
        return df

    # ------------------------------------------------------------------ judgments
    def put_judgment(self, j: Judgment) -> None:
        self._write(
            "INSERT OR REPLACE INTO judgments(cache_key, judge, prompt_id, first, second, score_first, score_second,"
            " verdict, rationale, raw, ok, attempts, error, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                j.cache_key, j.judge, j.prompt_id, j.first, j.second, j.score_first, j.score_second, j.verdict,
                j.rationale, j.raw, int(j.ok), j.attempts, j.error, time.time(),
            ),
        )

    def get_judgments(self, keys: Sequence[str]) -> dict[str, Judgment]:
        out: dict[str, Judgment] = {}
        cols = "cache_key, judge, prompt_id, first, second, score_first, score_second, verdict, rationale, raw, ok, attempts, error"
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            q = f"SELECT {cols} FROM judgments WHERE cache_key IN ({','.join('?' * len(chunk))})"
            for r in self.conn.execute(q, chunk):
                out[r[0]] = Judgment(
                    judge=r[1], prompt_id=r[2], first=r[3], second=r[4], score_first=r[5], score_second=r[6],
                    verdict=r[7], rationale=r[8] or "", raw=r[9] or "", ok=bool(r[10]), attempts=r[11] or 1,
                    cache_key=r[0], error=r[12],
                )
        return out

    def judgments(self) -> pd.DataFrame:
        import pandas as pd

        df = pd.read_sql_query("SELECT * FROM judgments ORDER BY rowid", self.conn)
        df["ok"] = df["ok"].astype(bool)
        return df

    # ------------------------------------------------------------------ battles
    def put_battle(self, battle_id: str, b: Battle, *, tag: str, seq: int, keys: tuple[str, str, str, str]) -> None:
        self._write(
            "INSERT OR REPLACE INTO battles(battle_id, tag, seq, prompt_id, model_a, model_b, judge, winner, margin,"
            " inconsistent, j_ab, j_ba, gen_a, gen_b, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                battle_id, tag, seq, b.prompt_id, b.model_a, b.model_b, b.judge, b.winner, b.margin,
                int(b.inconsistent), *keys, time.time(),
            ),
        )

    def battle_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT battle_id FROM battles")}

    def battles(self, tag: str | None = None, *, valid_only: bool = False) -> pd.DataFrame:
        import pandas as pd

        where, params = [], []
        if tag is not None:
            where.append("tag = ?")
            params.append(tag)
        if valid_only:
            where.append("winner IS NOT NULL")
        q = "SELECT * FROM battles" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY tag, seq"
        df = pd.read_sql_query(q, self.conn, params=params)
        df["inconsistent"] = df["inconsistent"].astype(bool)
        return df

    # ------------------------------------------------------------------ bandit decisions
    def put_decision(
        self, run: str, step: int, dimension: str, *, policy: str, arm: str, propensity: float,
        context_hash: str | None = None, reward: float | None = None, meta: dict[str, Any] | None = None,
    ) -> None:
        self._write(
            "INSERT OR REPLACE INTO decisions(run, step, dimension, policy, context_hash, arm, propensity, reward, meta)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (run, step, dimension, policy, context_hash, arm, propensity, reward, _dumps(meta or {})),
        )

    def set_reward(self, run: str, step: int, dimension: str, reward: float) -> None:
        self._write(
            "UPDATE decisions SET reward=? WHERE run=? AND step=? AND dimension=?", (reward, run, step, dimension)
        )

    def decisions(self, run: str | None = None) -> pd.DataFrame:
        import pandas as pd

        q = "SELECT * FROM decisions" + (" WHERE run = ?" if run else "") + " ORDER BY run, step, dimension"
        return pd.read_sql_query(q, self.conn, params=[run] if run else [])

    # ------------------------------------------------------------------ summaries
    def counts(self) -> dict[str, int]:
        out = {}
        for table in ("prompts", "completions", "generations", "judgments", "battles", "decisions"):
            out[table] = self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        out["invalid_judgments"] = self.conn.execute("SELECT COUNT(*) FROM judgments WHERE ok = 0").fetchone()[0]
        out["invalid_battles"] = self.conn.execute("SELECT COUNT(*) FROM battles WHERE winner IS NULL").fetchone()[0]
        out["unresolved_failures"] = len(self.unresolved_failures())
        return out
