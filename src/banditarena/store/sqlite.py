"""The run store. Pure stdlib sqlite3 + json; pandas only for the DataFrame views.

Two ways to open it:

* **writer** (``RunStore(run_dir)``): creates the directory and the schema, migrates an older schema, and
  holds the run directory's lock (:mod:`banditarena.store.lock`) until :meth:`RunStore.close`: a second
  writer process gets one line naming the holder (pid, host, start time) instead of paying for every request
  a second time. A lock left by a killed process is taken over.
* **reader** (``RunStore(run_dir, create=False)``): opens ``run.sqlite`` read-only and never writes, not even
  a schema into an empty file; a file that is not a run store is reported as such.

Any SQLite error (a damaged file, "database disk image is malformed", a full disk) surfaces as one
:class:`~banditarena.errors.StoreError` line naming the file and what sqlite3 said, never a traceback.

A model reply is stored once: in ``completions`` under its request's content address (with its
``finish_reason``); a generation stores the keys of its turns' completions and reads their texts from there.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from banditarena.errors import StoreError
from banditarena.secrets import redact
from banditarena.store.lock import RunLock, writer_active
from banditarena.types import Battle, Completion, Generation, Judgment, Prompt

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = "2"
#: Columns added after schema version 1 (table -> [(column, type)]); writers add them to an older store.
_ADDED_COLUMNS = {
    "completions": [("finish_reason", "TEXT")],
    "generations": [("turn_keys", "TEXT")],
    "judgments": [("prob_first", "REAL")],
    "battles": [("outcome", "REAL")],
}
_REQUIRED_TABLES = ("meta", "prompts", "completions", "generations", "judgments", "battles")

F = TypeVar("F", bound=Callable[..., Any])


def _guarded(fn: F) -> F:
    """Turn any SQLite error inside a store method into one StoreError line naming the file."""

    @functools.wraps(fn)
    def wrapper(self: RunStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # sqlite3.DatabaseError, or pandas' DatabaseError wrapping it
            if not _is_db_error(exc):
                raise
            raise StoreError(_db_error_line(self.path, exc)) from exc

    return wrapper  # type: ignore[return-value]


def _is_db_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.DatabaseError):
        return True
    return type(exc).__name__ == "DatabaseError" and type(exc).__module__.startswith("pandas")


def _db_error_line(path: Path, exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc.__cause__, sqlite3.Error) else exc
    msg = " ".join(str(cause).split())
    if ":" in msg and "Execution failed on sql" in msg:  # pandas' wrapper: keep sqlite3's own words
        msg = msg.rsplit(":", 1)[-1].strip()
    hint = ""
    low = msg.lower()
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        hint = f"; the file is damaged (check it with: sqlite3 {path} 'PRAGMA integrity_check')"
    elif "locked" in low or "busy" in low:
        hint = "; another process holds it"
    return f"{path}: sqlite3 says: {msg}{hint}"

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
-- human votes (banditarena.votes): one row per vote, its battle (judge 'human') written in the same transaction;
-- one vote per voter per battle (matchup: the prompt and the two answers); voter is a pseudonym, never an address
CREATE TABLE IF NOT EXISTS votes (
    vote_id TEXT PRIMARY KEY, voter TEXT NOT NULL, tstamp REAL NOT NULL, type TEXT NOT NULL, prompt_id TEXT NOT NULL,
    model_a TEXT NOT NULL, model_b TEXT NOT NULL, gen_a TEXT, gen_b TEXT, conv_a TEXT, conv_b TEXT,
    matchup TEXT NOT NULL, source TEXT, meta TEXT, created REAL, UNIQUE (voter, matchup)
);
"""


HUMAN_JUDGE = "human"
"""The judge name of human votes' battles (``banditarena.votes``)."""
VOTE_WINNER = {"leftvote": "model_a", "rightvote": "model_b", "tievote": "tie", "bothbad_vote": "tie (bothbad)"}
"""FastChat's vote types and the battle winner each gives."""
VOTE_COLUMNS = ("vote_id", "voter", "tstamp", "type", "prompt_id", "model_a", "model_b", "gen_a", "gen_b", "conv_a",
                "conv_b", "matchup", "source", "meta")

BATTLE_COLUMNS = ("battle_id", "tag", "seq", "prompt_id", "model_a", "model_b", "judge", "winner", "margin",
                  "inconsistent", "j_ab", "j_ba", "gen_a", "gen_b", "created", "outcome")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class RunStore:
    """A run directory's ``run.sqlite``. Cheap to open; every write is its own committed transaction.

    ``create=True`` opens it as the writer (holding the run directory's lock); ``create=False`` opens an
    existing store read-only.
    """

    def __init__(self, run_dir: str | Path, *, create: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "run.sqlite"
        self.writable = create
        self._lock: RunLock | None = None
        self._vote_seq: dict[str, int] = {}
        if not create:
            self._open_reader(run_dir)
        else:
            self._open_writer()
        self._columns = {
            t: {r[1] for r in self.conn.execute(f"PRAGMA table_info({t})")}
            for t in ("completions", "generations", "judgments", "battles")
        }

    def _open_reader(self, run_dir: str | Path) -> None:
        if not self.path.exists():
            raise StoreError(f"{self.path}: no run store here (run 'banditarena battle RECIPE --run-dir {run_dir}' first)")
        if self.path.stat().st_size == 0:
            raise StoreError(f"{self.path}: empty file, not a run store")
        # With no writer running and no write-ahead log left over, the file is all there is: open it immutable,
        # so reading creates no -wal/-shm files beside it. Otherwise read through the live WAL.
        quiet = not writer_active(self.run_dir) and not self.path.with_name(self.path.name + "-wal").exists()
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro" + ("&immutable=1" if quiet else "")
        try:
            self.conn = sqlite3.connect(uri, uri=True, timeout=30.0,
                                        isolation_level=None, check_same_thread=False)
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(_db_error_line(self.path, exc)) from exc
        missing = [t for t in _REQUIRED_TABLES if t not in tables]
        if missing:
            self.conn.close()
            raise StoreError(f"{self.path}: not a banditarena run store (no '{missing[0]}' table)")

    def _open_writer(self) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.run_dir}: cannot create the run directory ({exc.strerror})") from exc
        self._lock = RunLock.acquire(self.run_dir)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=OFF")
            self.conn.executescript(_SCHEMA)
            for table, cols in _ADDED_COLUMNS.items():
                have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
                for col, typ in cols:
                    if col not in have:
                        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {col} {typ}")
            self.conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )
        except sqlite3.DatabaseError as exc:
            self._lock.release()
            raise StoreError(_db_error_line(self.path, exc)) from exc

    # ------------------------------------------------------------------ basics
    def close(self) -> None:
        self.conn.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunStore:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_writable(self) -> None:
        if not self.writable:
            raise StoreError(f"{self.path}: opened read-only; this command does not write to a run store")

    def _write(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._check_writable()
        self.conn.execute(sql, params)

    def _write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._check_writable()
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

    def delete_state(self, key: str) -> bool:
        """Remove a state entry; False when there was none."""
        if self.get_state(key) is None:
            return False
        self._write("DELETE FROM state WHERE key=?", (key,))
        return True

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
            fr = "finish_reason" if "finish_reason" in self._columns["completions"] else "NULL"
            q = (f"SELECT cache_key, text, tokens, latency_s, {fr} FROM completions"
                 f" WHERE cache_key IN ({','.join('?' * len(chunk))})")
            for k, text, tokens, lat, finish in self.conn.execute(q, chunk):
                out[k] = Completion(text=text, tokens=tokens or 0, latency_s=lat or 0.0, finish_reason=finish)
        return out

    def put_completions(self, items: Sequence[tuple[str, Completion, str, str]]) -> None:
        """(key, completion, subject, prompt_id) for one chunk, in ONE transaction (all or nothing).

        Callers commit each request's result the moment it returns (a chunk of one for remote backends)."""
        self._check_writable()
        now = time.time()
        with self.conn:
            self.conn.execute("BEGIN")
            for key, c, subject, prompt_id in items:
                if c.ok:
                    self.conn.execute(
                        "INSERT OR REPLACE INTO completions(cache_key, text, tokens, latency_s, created, finish_reason)"
                        " VALUES (?,?,?,?,?,?)",
                        (key, c.text, c.tokens, c.latency_s, now, c.finish_reason),
                    )
                else:
                    self.conn.execute(
                        "INSERT INTO failures(cache_key, kind, subject, prompt_id, error, created) VALUES (?,?,?,?,?,?)",
                        (key, "generation", subject, prompt_id, redact(c.error) or "unknown error", now),
                    )

    def record_failure(self, key: str, kind: str, subject: str, prompt_id: str, error: str) -> None:
        self._write(
            "INSERT INTO failures(cache_key, kind, subject, prompt_id, error, created) VALUES (?,?,?,?,?,?)",
            (key, kind, subject, prompt_id, redact(error), time.time()),
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
    def put_generation(self, g: Generation, turn_keys: Sequence[str] | None = None) -> None:
        """Store a generation. With ``turn_keys`` (the completions holding its turns, already stored) only the
        keys are written and the texts stay in ``completions`` alone; without, the turns' texts are written."""
        keys = _dumps(list(turn_keys)) if turn_keys is not None else None
        turns = "" if keys is not None else _dumps(g.turns)
        self._write(
            "INSERT OR REPLACE INTO generations(cache_key, contestant, prompt_id, turns, tokens, latency_s, created,"
            " turn_keys) VALUES (?,?,?,?,?,?,?,?)",
            (g.cache_key, g.contestant, g.prompt_id, turns, g.tokens, g.latency_s, time.time(), keys),
        )

    def _turn_texts(self, rows: list[tuple[Any, ...]]) -> list[list[str]]:
        """Turn texts of generation rows ``(..., turns, turn_keys)``: inline JSON, or looked up by key."""
        need = {k for r in rows if r[-1] for k in json.loads(r[-1])}
        texts = {k: c.text for k, c in self.get_completions(sorted(need)).items()} if need else {}
        out = []
        for r in rows:
            if r[-1]:
                keys = json.loads(r[-1])
                missing = [k for k in keys if k not in texts]
                if missing:
                    raise StoreError(f"{self.path}: generation {r[0]} refers to a missing completion {missing[0]}")
                out.append([texts[k] for k in keys])
            else:
                out.append(json.loads(r[-2]) if r[-2] else [])
        return out

    def _opt_col(self, table: str, col: str) -> str:
        """A column added after the first schema (:data:`_ADDED_COLUMNS`): itself, or NULL in a store opened
        read-only that predates it."""
        return col if col in self._columns[table] else f"NULL AS {col}"

    def _keys_col(self) -> str:
        return "turn_keys" if "turn_keys" in self._columns["generations"] else "NULL"

    def get_generations(self, keys: Sequence[str]) -> dict[str, Generation]:
        out: dict[str, Generation] = {}
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            q = (
                f"SELECT cache_key, contestant, prompt_id, tokens, latency_s, turns, {self._keys_col()} FROM generations"
                f" WHERE cache_key IN ({','.join('?' * len(chunk))})"
            )
            rows = self.conn.execute(q, chunk).fetchall()
            for r, turns in zip(rows, self._turn_texts(rows), strict=True):
                k, c, pid, tok, lat = r[:5]
                out[k] = Generation(c, pid, turns, tok or 0, lat or 0.0, k)
        return out

    def generations(self) -> pd.DataFrame:
        import pandas as pd

        rows = self.conn.execute(
            f"SELECT cache_key, contestant, prompt_id, tokens, latency_s, turns, {self._keys_col()}"
            " FROM generations ORDER BY rowid"
        ).fetchall()
        df = pd.DataFrame([r[:5] for r in rows], columns=["cache_key", "contestant", "prompt_id", "tokens", "latency_s"])
        df.insert(3, "turns", pd.Series(self._turn_texts(rows), dtype=object))
        df["text"] = df["turns"].map(lambda t: t[-1] if t else "")
        return df

    # ------------------------------------------------------------------ judgments
    _JUDGMENT_INSERT = (
        "INSERT OR REPLACE INTO judgments(cache_key, judge, prompt_id, first, second, score_first, score_second,"
        " verdict, rationale, raw, ok, attempts, error, created, prob_first) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )

    @staticmethod
    def _judgment_row(j: Judgment, now: float) -> tuple[Any, ...]:
        return (j.cache_key, j.judge, j.prompt_id, j.first, j.second, j.score_first, j.score_second, j.verdict,
                j.rationale, j.raw, int(j.ok), j.attempts, redact(j.error), now, j.prob_first)

    def put_judgment(self, j: Judgment) -> None:
        self._write(self._JUDGMENT_INSERT, self._judgment_row(j, time.time()))

    def put_judgments(self, judgments: Sequence[Judgment]) -> None:
        """Several judgments that came back together (an in-process judge's batch), in one transaction."""
        now = time.time()
        self._write_many(self._JUDGMENT_INSERT, [self._judgment_row(j, now) for j in judgments])

    def get_judgments(self, keys: Sequence[str]) -> dict[str, Judgment]:
        out: dict[str, Judgment] = {}
        cols = ("cache_key, judge, prompt_id, first, second, score_first, score_second, verdict, rationale, raw, ok,"
                f" attempts, error, {self._opt_col('judgments', 'prob_first')}")
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            q = f"SELECT {cols} FROM judgments WHERE cache_key IN ({','.join('?' * len(chunk))})"
            for r in self.conn.execute(q, chunk):
                out[r[0]] = Judgment(
                    judge=r[1], prompt_id=r[2], first=r[3], second=r[4], score_first=r[5], score_second=r[6],
                    verdict=r[7], rationale=r[8] or "", raw=r[9] or "", ok=bool(r[10]), attempts=r[11] or 1,
                    cache_key=r[0], error=r[12], prob_first=r[13],
                )
        return out

    def judgments(self) -> pd.DataFrame:
        import pandas as pd

        df = pd.read_sql_query("SELECT * FROM judgments ORDER BY rowid", self.conn)
        df["ok"] = df["ok"].astype(bool)
        return df

    # ------------------------------------------------------------------ battles
    _BATTLE_INSERT = (
        "INSERT OR REPLACE INTO battles(battle_id, tag, seq, prompt_id, model_a, model_b, judge, winner, margin,"
        " inconsistent, j_ab, j_ba, gen_a, gen_b, created, outcome) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )

    def put_battle(self, battle_id: str, b: Battle, *, tag: str, seq: int, keys: tuple[str, str, str, str]) -> None:
        self.put_battles([(battle_id, b, seq, keys)], tag=tag)

    def put_battles(self, rows: Sequence[tuple[str, Battle, int, tuple[str, str, str, str]]], *, tag: str) -> None:
        """Battles ``(battle_id, battle, seq, (j_ab, j_ba, gen_a, gen_b))`` in one transaction."""
        now = time.time()
        self._write_many(self._BATTLE_INSERT, [
            (bid, tag, seq, b.prompt_id, b.model_a, b.model_b, b.judge, b.winner, b.margin, int(b.inconsistent),
             *keys, now, b.outcome) for bid, b, seq, keys in rows])

    def battle_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT battle_id FROM battles")}

    def get_battles(self, ids: Sequence[str]) -> dict[str, Battle]:
        """Stored battles by id (without their judgments)."""
        out: dict[str, Battle] = {}
        cols = f"battle_id, prompt_id, model_a, model_b, winner, margin, inconsistent, judge, {self._opt_col('battles', 'outcome')}"
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            q = f"SELECT {cols} FROM battles WHERE battle_id IN ({','.join('?' * len(chunk))})"
            for bid, pid, a, b, w, m, inc, judge, outcome in self.conn.execute(q, chunk):
                out[bid] = Battle(pid, a, b, w, m, bool(inc), judge, outcome=outcome)
        return out

    def battles(self, tag: str | None = None, *, valid_only: bool = False,
                columns: Sequence[str] | None = None, judge: str | None = None,
                exclude_judge: str | None = None) -> pd.DataFrame:
        """The battles (of one ``tag``; only those with a winner when ``valid_only``; only those of ``judge``,
        none of ``exclude_judge``), in stored order.

        ``columns`` reads only those columns (a leaderboard over a million battles needs three of fifteen,
        a tenth of the memory); an unknown column name is a :class:`ValueError`.
        """
        import pandas as pd

        cols = "*"
        if columns is not None:
            unknown = [c for c in columns if c not in BATTLE_COLUMNS]
            if unknown or not columns:
                raise ValueError(f"battles(columns=...): unknown column(s) {unknown or '(none given)'}; "
                                 f"known: {', '.join(BATTLE_COLUMNS)}")
            cols = ", ".join(self._opt_col("battles", c) if c == "outcome" else c for c in columns)
        where, params = [], []
        if tag is not None:
            where.append("tag = ?")
            params.append(tag)
        if valid_only:
            where.append("winner IS NOT NULL")
        if judge is not None:
            where.append("judge = ?")
            params.append(judge)
        if exclude_judge is not None:
            where.append("judge != ?")
            params.append(exclude_judge)
        q = f"SELECT {cols} FROM battles" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY tag, seq"
        df = pd.read_sql_query(q, self.conn, params=params)
        if "inconsistent" in df.columns:
            df["inconsistent"] = df["inconsistent"].astype(bool)
        return df

    # ------------------------------------------------------------------ human votes
    def has_votes_table(self) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='votes'").fetchone() is not None

    def put_votes(self, votes: Sequence[dict[str, Any]], *, tag: str = HUMAN_JUDGE) -> list[bool]:
        """Store human votes (dicts with :data:`VOTE_COLUMNS`; ``meta`` a dict) and their battles (judge
        ``human``, winner from the vote type) in ONE transaction, committed before this returns. A vote whose
        ``vote_id`` or ``(voter, matchup)`` is already stored is skipped (nothing written for it). Returns,
        per vote, whether it was stored."""
        self._check_writable()
        now = time.time()
        out = []
        with self.conn:
            self.conn.execute("BEGIN")
            seq = self._vote_seq.get(tag)      # one writer per run dir: the next seq is known after the first
            if seq is None:
                seq = self.conn.execute("SELECT COALESCE(MAX(seq), -1) FROM battles WHERE tag = ?",
                                        (tag,)).fetchone()[0]
            for v in votes:
                cur = self.conn.execute(
                    "INSERT OR IGNORE INTO votes(vote_id, voter, tstamp, type, prompt_id, model_a, model_b, gen_a, gen_b,"
                    " conv_a, conv_b, matchup, source, meta, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (v["vote_id"], v["voter"], float(v["tstamp"]), v["type"], v["prompt_id"], v["model_a"],
                     v["model_b"], v.get("gen_a"), v.get("gen_b"), v.get("conv_a"), v.get("conv_b"), v["matchup"],
                     v.get("source"), _dumps(v.get("meta") or {}), now))
                stored = cur.rowcount == 1
                out.append(stored)
                if not stored:
                    continue
                seq += 1
                self.conn.execute(self._BATTLE_INSERT, (
                    v["vote_id"], tag, seq, v["prompt_id"], v["model_a"], v["model_b"], HUMAN_JUDGE,
                    VOTE_WINNER[v["type"]], None, 0, None, None, v.get("gen_a"), v.get("gen_b"), now, None))
        self._vote_seq[tag] = seq          # only once the transaction committed
        return out

    def votes(self) -> pd.DataFrame:
        """Every stored human vote, in the order they were stored (an empty frame in a store without votes)."""
        import pandas as pd

        if not self.has_votes_table():
            return pd.DataFrame(columns=list(VOTE_COLUMNS))
        df = pd.read_sql_query(f"SELECT {', '.join(VOTE_COLUMNS)} FROM votes ORDER BY rowid", self.conn)
        df["meta"] = df["meta"].map(lambda m: json.loads(m) if m else {})
        return df

    def vote_count(self) -> int:
        if not self.has_votes_table():
            return 0
        return int(self.conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0])

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


# Every public method reports SQLite errors as one StoreError line (a damaged file, a full disk).
for _name, _fn in list(vars(RunStore).items()):
    if callable(_fn) and not _name.startswith("_") and _name not in ("close",):
        setattr(RunStore, _name, _guarded(_fn))
