"""The tutor behind the web app: learners, their policy state and every answer, persisted in SQLite.

One :class:`Tutor` serves many learners. Each learner has their own policy (ZPDES by default, the bandit core's
:class:`~banditarena.curriculum.zpdes.ZPDES`), their own knowledge estimate (BKT per activity, for the teacher),
the problem they are on, and a log of every decision with its propensity, every answer, and every hint (with
why a generated hint was rejected). Everything a learner did survives a restart: the session resumes where it
stopped. An invalid answer (empty, not a number, too long) is refused with a message for the learner and
stores nothing.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from banditarena.curriculum.items import Item, format_number, is_correct, parse_answer
from banditarena.curriculum.policies import MasteryParams, bkt_posterior, make_policy
from banditarena.curriculum.recipe import PolicySpec
from banditarena.curriculum.spec import Curriculum
from banditarena.curriculum.zpdes import ZPDES
from banditarena.errors import StoreError
from banditarena.types import stable_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS learners (
  name TEXT PRIMARY KEY, grade INTEGER NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
  policy_state TEXT NOT NULL, knowledge TEXT NOT NULL, current_item TEXT, current_arm INTEGER,
  current_propensity REAL, n_answers INTEGER NOT NULL DEFAULT 0, n_correct INTEGER NOT NULL DEFAULT 0,
  feedback TEXT);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, learner TEXT NOT NULL, ts REAL NOT NULL, step INTEGER NOT NULL,
  activity TEXT NOT NULL, arm INTEGER NOT NULL, propensity REAL NOT NULL, policy TEXT NOT NULL,
  item_id TEXT NOT NULL, question TEXT NOT NULL, expected REAL NOT NULL, answer TEXT NOT NULL,
  correct INTEGER NOT NULL, zpd TEXT);
CREATE TABLE IF NOT EXISTS hints (
  id INTEGER PRIMARY KEY AUTOINCREMENT, learner TEXT NOT NULL, ts REAL NOT NULL, activity TEXT NOT NULL,
  item_id TEXT NOT NULL, source TEXT NOT NULL, text TEXT NOT NULL, generated TEXT, stage TEXT, reasons TEXT,
  grade_level REAL, safety TEXT, latency_s REAL NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS events_learner ON events(learner, step);
CREATE INDEX IF NOT EXISTS hints_learner ON hints(learner, id);
CREATE TABLE IF NOT EXISTS teachers (
  id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL UNIQUE COLLATE NOCASE, pw_hash TEXT NOT NULL,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS classes (
  id TEXT PRIMARY KEY, teacher_id INTEGER NOT NULL REFERENCES teachers(id), name TEXT NOT NULL,
  created REAL NOT NULL);
"""

# Columns added to ``learners`` for classes (older databases get them on open): the display name the teacher
# typed, the class, and the keyed hash of the learner's sign-in code. ``learners.name`` is then an opaque id.
LEARNER_COLUMNS = {"display": "TEXT", "class_id": "TEXT", "code_hash": "TEXT"}

_NAME = re.compile(r"^[\w][\w .'\-]{0,39}$", re.UNICODE)


class NameError_(ValueError):
    """A learner name that cannot be used; the message is for the person typing it."""


def check_name(name: Any) -> str:
    s = " ".join(str(name or "").split())
    if not s:
        raise NameError_("Please type your name.")
    if len(s) > 40:
        raise NameError_("That name is too long. Please use at most 40 letters.")
    if not _NAME.match(s):
        raise NameError_("Please use only letters, numbers, spaces, dots, dashes or apostrophes in your name.")
    return s


@dataclass
class Feedback:
    correct: bool
    answer: str
    expected: str
    question: str
    solution: str | None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class LearnerPolicy:
    """One learner's policy: the bandit core's ZPDES for ``zpdes``, a one-learner batch policy otherwise."""

    def __init__(self, spec: PolicySpec, curriculum: Curriculum, seed: int) -> None:
        self.spec = spec
        self.kind = spec.kind
        if spec.kind == "zpdes":
            self.core: Any = ZPDES(curriculum.n_activities, [a.requires for a in curriculum.activities], seed=seed,
                                   **spec.params)
        else:
            self.core = make_policy(spec.kind, curriculum, 1, np.random.default_rng(seed), spec.params)

    def select(self) -> tuple[int, float]:
        if self.kind == "zpdes":
            a, p = self.core.select(1)
        else:
            a, p = self.core.select()
        return int(a[0]), float(p[0])

    def update(self, arm: int, correct: bool) -> None:
        if self.kind == "zpdes":
            self.core.update([arm], [1.0 if correct else 0.0])
        else:
            self.core.update(np.array([arm]), np.array([correct]))

    def zpd(self) -> list[int]:
        if self.kind == "zpdes":
            return [int(a) for a in self.core.zpd]
        z = self.core.zpd()
        return [] if z is None else [int(a) for a in np.flatnonzero(z[0])]

    def state_dict(self) -> dict[str, Any]:
        return self.core.state_dict()

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.core.load_state_dict(s)


class Tutor:
    """Learners, decisions, answers and hints of one curriculum and policy, stored in ``db``.

    Args:
        curriculum: the compiled curriculum.
        db: SQLite file (created). A file made for another curriculum or policy is refused (StoreError).
        policy: the teaching policy of every learner.
        hints: a :class:`~banditarena.curriculum.hints.HintService` (``None``: template hints only).
        seed: items and policy randomness derive from it, the learner's name and the step.
        default_grade: reading grade of a learner who does not give one.
    """

    def __init__(self, curriculum: Curriculum, db: str | Path, policy: PolicySpec | None = None,
                 hints: Any = None, seed: int = 0, default_grade: int | None = None) -> None:
        self.curriculum = curriculum
        self.policy = policy or PolicySpec(kind="zpdes")
        self.hints = hints
        self.seed = int(seed)
        self.default_grade = int(default_grade if default_grade is not None else curriculum.grade)
        self.mastery = MasteryParams()
        self.path = Path(db)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        have = {r["name"] for r in self._conn.execute("PRAGMA table_info(learners)")}
        for col, kind in LEARNER_COLUMNS.items():
            if col not in have:
                self._conn.execute(f"ALTER TABLE learners ADD COLUMN {col} {kind}")
        self._conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS learners_code ON learners(code_hash)")
        self._conn.execute("CREATE INDEX IF NOT EXISTS learners_class ON learners(class_id)")
        ident = {"curriculum": curriculum.fingerprint, "policy": self.policy.model_dump()}
        key = stable_hash(ident, 16)
        row = self._conn.execute("SELECT value FROM meta WHERE key='identity'").fetchone()
        if row is None:
            self._conn.execute("INSERT INTO meta VALUES ('identity', ?), ('described', ?)",
                               (key, json.dumps(ident)))
        elif row["value"] != key:
            was = self._conn.execute("SELECT value FROM meta WHERE key='described'").fetchone()[0]
            self._conn.close()
            raise StoreError(f"{self.path}: this tutor database belongs to another curriculum or policy ({was}); "
                             "use another --run-dir or db")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --------------------------------------------------------------------------------------------- rows
    def _learner(self, name: str) -> sqlite3.Row | None:
        return self._conn.execute("SELECT * FROM learners WHERE name=?", (name,)).fetchone()

    def _policy_for(self, row: sqlite3.Row) -> LearnerPolicy:
        pol = LearnerPolicy(self.policy, self.curriculum, self._seed(row["name"], -1))
        pol.load_state_dict(json.loads(row["policy_state"]))
        return pol

    def _seed(self, name: str, step: int) -> int:
        return int(stable_hash([self.seed, name, step], 15), 16)

    def learners(self) -> list[str]:
        with self._lock:
            return [r["name"] for r in self._conn.execute("SELECT name FROM learners ORDER BY updated DESC")]

    def start(self, name: Any, grade: Any = None) -> str:
        """Create the learner ``name`` (or resume them); returns the cleaned name. Raises NameError_."""
        n = check_name(name)
        g = self.default_grade
        if grade not in (None, ""):
            try:
                g = int(grade)
            except (TypeError, ValueError):
                raise NameError_("Please choose your grade from the list.") from None
            if not 0 <= g <= 12:
                raise NameError_("Please choose your grade from the list.")
        with self._lock:
            row = self._learner(n)
            if row is None:
                self._insert(n, g, display=n)
            elif grade not in (None, ""):
                self._conn.execute("UPDATE learners SET grade=?, updated=? WHERE name=?", (g, time.time(), n))
        return n

    def check_grade(self, grade: Any) -> int:
        if grade in (None, ""):
            return self.default_grade
        try:
            g = int(grade)
        except (TypeError, ValueError):
            raise NameError_("Please choose the grade from the list.") from None
        if not 0 <= g <= 12:
            raise NameError_("Please choose the grade from the list.")
        return g

    def _insert(self, key: str, grade: int, display: str, class_id: str | None = None,
                code_hash: str | None = None) -> None:
        now = time.time()
        pol = LearnerPolicy(self.policy, self.curriculum, self._seed(key, -1))
        know = [self.mastery.prior] * self.curriculum.n_activities
        self._conn.execute(
            "INSERT INTO learners (name, grade, created, updated, policy_state, knowledge, display, class_id, "
            "code_hash) VALUES (?,?,?,?,?,?,?,?,?)",
            (key, grade, now, now, json.dumps(pol.state_dict()), json.dumps(know), display, class_id, code_hash))

    def add_learner(self, display: Any, grade: Any, class_id: str, code_hash: str | None = None) -> str:
        """A new learner of class ``class_id`` shown as ``display``; returns their opaque id (``l_...``), which
        is all that URLs, sessions and logs carry. Raises NameError_ for a bad name or grade."""
        d = check_name(display)
        g = self.check_grade(grade)
        key = "l_" + secrets.token_hex(8)
        with self._lock:
            self._insert(key, g, display=d, class_id=class_id, code_hash=code_hash)
        return key

    def learner_meta(self, key: str) -> dict[str, Any] | None:
        """Id, display name, class and grade of a learner (``None``: no such learner)."""
        with self._lock:
            row = self._conn.execute("SELECT name, display, class_id, grade, n_answers, updated FROM learners "
                                     "WHERE name=?", (key,)).fetchone()
        return None if row is None else {"id": row["name"], "display": row["display"] or row["name"],
                                         "class_id": row["class_id"], "grade": row["grade"],
                                         "answers": row["n_answers"], "updated": row["updated"]}

    def learner_by_code(self, code_hash: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT name FROM learners WHERE code_hash=?", (code_hash,)).fetchone()
        return None if row is None else row["name"]

    def set_code(self, key: str, code_hash: str) -> None:
        with self._lock:
            self._conn.execute("UPDATE learners SET code_hash=? WHERE name=?", (code_hash, key))

    def class_learners(self, class_ids: list[str]) -> list[str]:
        """Ids of the learners of these classes, most recently active first."""
        if not class_ids:
            return []
        marks = ",".join("?" * len(class_ids))
        with self._lock:
            return [r["name"] for r in self._conn.execute(
                f"SELECT name FROM learners WHERE class_id IN ({marks}) ORDER BY updated DESC", class_ids)]

    def delete_learner(self, key: str) -> bool:
        """Delete a learner with every answer and hint they have (one transaction); False if unknown."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                n = self._conn.execute("DELETE FROM learners WHERE name=?", (key,)).rowcount
                self._conn.execute("DELETE FROM events WHERE learner=?", (key,))
                self._conn.execute("DELETE FROM hints WHERE learner=?", (key,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return bool(n)

    def purge_inactive(self, days: float, now: float | None = None) -> int:
        """Delete every learner of a class not active for ``days`` days (the retention period)."""
        cutoff = (time.time() if now is None else now) - days * 86400.0
        with self._lock:
            keys = [r["name"] for r in self._conn.execute("SELECT name FROM learners WHERE updated < ?", (cutoff,))]
        return sum(self.delete_learner(k) for k in keys)

    def export_learner(self, key: str) -> dict[str, Any]:
        """Everything stored about one learner (KeyError if unknown): profile, every answer, every hint."""
        with self._lock:
            row = self._learner(key)
            if row is None:
                raise KeyError(key)
            events = [dict(r) for r in self._conn.execute(
                "SELECT step, ts, activity, question, expected, answer, correct, propensity, policy, zpd FROM events "
                "WHERE learner=? ORDER BY step", (key,))]
            hints = [dict(r) for r in self._conn.execute(
                "SELECT ts, activity, item_id, source, text, generated, stage, reasons FROM hints WHERE learner=? "
                "ORDER BY id", (key,))]
        view = self.learner_view(key, recent=0)
        for e in events:
            e["expected"] = format_number(float(e["expected"]))
            e["zpd"] = json.loads(e["zpd"] or "[]")
        for h in hints:
            h["reasons"] = json.loads(h["reasons"] or "[]")
        return {"learner": {"id": key, "name": row["display"] or key, "grade": row["grade"],
                            "created": row["created"], "updated": row["updated"], "answers": row["n_answers"],
                            "correct": row["n_correct"]},
                "mastery": view["skills"], "zpd": view["zpd"], "answers": events, "hints": hints}

    def current(self, name: str) -> dict[str, Any]:
        """The learner's current problem (chosen by the policy and stored if there is none), the feedback on
        their last answer and the hint shown for this problem, if any."""
        with self._lock:
            row = self._learner(name)
            if row is None:
                raise KeyError(name)
            if row["current_item"] is None:
                pol = self._policy_for(row)
                arm, prop = pol.select()
                item = self.curriculum.item(arm, np.random.default_rng(self._seed(name, row["n_answers"])))
                self._conn.execute(
                    "UPDATE learners SET current_item=?, current_arm=?, current_propensity=?, policy_state=?, "
                    "updated=? WHERE name=?",
                    (json.dumps(item.to_dict()), arm, prop, json.dumps(pol.state_dict()), time.time(), name))
                row = self._learner(name)
            item = Item.from_dict(json.loads(row["current_item"]))
            hint = self._conn.execute("SELECT * FROM hints WHERE learner=? AND item_id=? ORDER BY id DESC LIMIT 1",
                                      (name, f"{row['n_answers']}:{item.id}")).fetchone()
            act = self.curriculum.activities[int(row["current_arm"])]
            return {"name": name, "display": row["display"] or name, "grade": row["grade"], "item": item,
                    "activity": act.id, "activity_name": act.name, "skill": act.skill_id, "step": row["n_answers"], "n_correct": row["n_correct"],
                    "feedback": json.loads(row["feedback"]) if row["feedback"] else None,
                    "hint": dict(hint) if hint else None}

    def answer(self, name: str, text: Any, item_id: str | None = None) -> Feedback | None:
        """Mark the learner's answer to their current problem, update their policy and knowledge, store it.

        Raises :class:`AnswerError` (message for the learner) for an empty, non-numeric or too long answer:
        nothing is stored and the problem stays. Returns ``None`` when ``item_id`` is not the current problem
        (a form sent twice): nothing is stored.
        """
        value = parse_answer(text)
        with self._lock:
            row = self._learner(name)
            if row is None:
                raise KeyError(name)
            if row["current_item"] is None:
                return None
            item = Item.from_dict(json.loads(row["current_item"]))
            if item_id is not None and item_id != item.id:
                return None
            ok = is_correct(item, value)
            arm = int(row["current_arm"])
            pol = self._policy_for(row)
            pol.update(arm, ok)
            know = np.asarray(json.loads(row["knowledge"]), dtype=float)
            m = self.mastery
            know[arm] = float(bkt_posterior(np.array([know[arm]]), np.array([ok]), m.learn, m.guess, m.slip)[0])
            fb = Feedback(ok, str(text).strip(), item.answer_text, item.question, item.solution)
            step = int(row["n_answers"])
            zpd = [self.curriculum.activities[a].id for a in pol.zpd()]
            now = time.time()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO events (learner, ts, step, activity, arm, propensity, policy, item_id, question, "
                    "expected, answer, correct, zpd) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (name, now, step, item.activity, arm, float(row["current_propensity"]), self.policy.label,
                     item.id, item.question, item.answer, format_number(value), int(ok), json.dumps(zpd)))
                self._conn.execute(
                    "UPDATE learners SET policy_state=?, knowledge=?, current_item=NULL, current_arm=NULL, "
                    "current_propensity=NULL, n_answers=n_answers+1, n_correct=n_correct+?, feedback=?, updated=? "
                    "WHERE name=?",
                    (json.dumps(pol.state_dict()), json.dumps(know.tolist()), int(ok), json.dumps(fb.to_dict()),
                     now, name))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            return fb

    def hint(self, name: str, answer: str | None = None) -> dict[str, Any]:
        """A hint for the learner's current problem (generated and checked, or the template); stored."""
        cur = self.current(name)
        item: Item = cur["item"]
        act = self.curriculum.activities[self.curriculum.index[item.activity]]
        if self.hints is None:
            from banditarena.curriculum.hints import HintResult

            res = HintResult(act.hint, "template", None, ["hints from a model are turned off"], "disabled")
        else:
            res = self.hints.hint(item, act.hint, answer, int(cur["grade"]))
        with self._lock:
            self._conn.execute(
                "INSERT INTO hints (learner, ts, activity, item_id, source, text, generated, stage, reasons, "
                "grade_level, safety, latency_s, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (name, time.time(), item.activity, f"{cur['step']}:{item.id}", res.source, res.text, res.generated,
                 res.stage, json.dumps(res.reasons), res.grade_level, res.safety, res.latency_s, res.error))
        return res.to_dict()

    # ------------------------------------------------------------------------------------------ teacher
    def learner_view(self, name: str, recent: int = 10) -> dict[str, Any]:
        """What the teacher page shows about one learner."""
        with self._lock:
            row = self._learner(name)
            if row is None:
                raise KeyError(name)
            know = np.asarray(json.loads(row["knowledge"]), dtype=float)
            pol = self._policy_for(row)
            events = [dict(r) for r in self._conn.execute(
                "SELECT step, activity, propensity, correct, answer, expected, question FROM events WHERE learner=? "
                "ORDER BY step DESC LIMIT ?", (name, max(0, recent)))]
        for e in events:
            e["expected"] = format_number(float(e["expected"]))
        cur = self.curriculum
        skills = []
        for si, s in enumerate(cur.skills):
            idx = [a.index for a in cur.activities if a.skill == si]
            skills.append({"skill": s.id, "name": s.name or s.id, "mastery": float(know[idx].mean()),
                           "activities": [{"id": cur.activities[i].id, "p_known": float(know[i])} for i in idx]})
        return {"name": row["display"] or name, "id": name, "class_id": row["class_id"], "grade": row["grade"],
                "answers": row["n_answers"], "correct": row["n_correct"],
                "accuracy": (row["n_correct"] / row["n_answers"]) if row["n_answers"] else None,
                "skills": skills, "zpd": [cur.activities[a].id for a in pol.zpd()], "recent": events,
                "updated": row["updated"]}

    @staticmethod
    def _among(learners: list[str] | None) -> tuple[str, list[str]]:
        if learners is None:
            return "", []
        return f" WHERE learner IN ({','.join('?' * len(learners)) or 'NULL'})", list(learners)

    def hint_log(self, limit: int = 50, learners: list[str] | None = None) -> list[dict[str, Any]]:
        """The latest hints (of ``learners`` only, when given), each with the learner's display name."""
        where, args = self._among(learners)
        with self._lock:
            rows = [dict(r) for r in self._conn.execute(
                f"SELECT h.*, COALESCE(l.display, h.learner) AS learner_name FROM (SELECT * FROM hints{where}) h "
                "LEFT JOIN learners l ON l.name = h.learner ORDER BY h.id DESC LIMIT ?", (*args, limit))]
        for r in rows:
            r["reasons"] = json.loads(r["reasons"] or "[]")
        return rows

    def hint_stats(self, learners: list[str] | None = None) -> dict[str, Any]:
        where, args = self._among(learners)
        with self._lock:
            rows = self._conn.execute(f"SELECT source, stage, latency_s FROM hints{where}", args).fetchall()
        n = len(rows)
        stages: dict[str, int] = {}
        for r in rows:
            if r["stage"]:
                stages[r["stage"]] = stages.get(r["stage"], 0) + 1
        lat = [r["latency_s"] for r in rows if r["stage"] != "disabled"]
        return {"hints": n, "from_model": sum(r["source"] == "model" for r in rows),
                "rejected": {k: v for k, v in sorted(stages.items())},
                "backend_failures": stages.get("backend", 0),
                "median_wait_s": float(np.median(lat)) if lat else None}

    def decision_log(self, name: str | None = None) -> Any:
        """The stored decisions as the bandit core's :class:`~banditarena.bandits.DecisionLog` (arm = activity
        index, propensity, reward = correctness; learner and activity id in each record's extra fields)."""
        from banditarena.bandits import DecisionLog

        rows = [{"step": k, "policy": e["policy"], "arm": e["arm"], "propensity": e["propensity"],
                 "reward": float(e["correct"]), "learner": e["learner"], "activity": e["activity"]}
                for k, e in enumerate(self.decisions(name))]
        return DecisionLog.from_dicts(rows, policy=self.policy.label)

    def decisions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every logged decision (arm, propensity, correctness), for off-policy evaluation."""
        with self._lock:
            q = "SELECT * FROM events" + (" WHERE learner=?" if name else "") + " ORDER BY learner, step"
            return [dict(r) for r in self._conn.execute(q, (name,) if name else ())]
