"""Teacher accounts, classes and learners' sign-in codes, in the tutor's SQLite database.

* A **teacher** has a username and an Argon2id password hash (:mod:`banditarena.web.passwords`). Teachers are
  created with ``banditarena tutor admin create-teacher`` or through the one-time link the server prints on
  its first start.
* A teacher creates **classes** and adds learners to them; every learner gets a **sign-in code** (8 letters
  and digits, ``ABCD-EFGH``; about 40 bits) that the teacher prints for them: young children do not manage
  passwords, and nobody can act as another learner by typing their name. A code is shown once; the database
  keeps only its keyed hash (HMAC-SHA256 under the server secret), so a copy of the database does not sign
  anyone in. A teacher can give a learner a new code (the old one stops working).
* Everything a teacher reads or changes is looked up through their own classes: another teacher's class or
  learner is "not found", never "forbidden".
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any

from banditarena.curriculum.tutor import NameError_, Tutor, check_name
from banditarena.web.passwords import check_password, hash_password, needs_rehash, verify_password
from banditarena.web.sessions import derive_key

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"    # no 0/O, 1/I: easy to read aloud and to type
CODE_LEN = 8
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{2,63}$")
MAX_LEARNERS_PER_ADD = 60


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message is for the person asking."""


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize_code(text: Any) -> str:
    """A typed code as stored: letters and digits only, upper case (``abcd efgh`` = ``ABCD-EFGH``)."""
    return re.sub(r"[^A-Za-z0-9]", "", str(text or ""))[:32].upper()


class Accounts:
    """Teachers, classes and sign-in codes of one tutor database (its connection and lock)."""

    def __init__(self, tutor: Tutor, secret: bytes) -> None:
        self.tutor = tutor
        self._code_key = derive_key(secret, "learner-code")

    @property
    def _conn(self) -> Any:
        return self.tutor._conn

    # ------------------------------------------------------------------------------------------ teachers
    @staticmethod
    def check_username(username: Any) -> str:
        u = str(username or "").strip()
        if not _USERNAME.match(u):
            raise AccountError("A username has 3-64 letters, digits or . _ @ + - and starts with a letter or "
                               "digit.")
        return u

    def create_teacher(self, username: Any, password: str) -> int:
        u = self.check_username(username)
        try:
            check_password(password)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        h = hash_password(password)
        with self.tutor._lock:
            if self._conn.execute("SELECT 1 FROM teachers WHERE username=?", (u,)).fetchone():
                raise AccountError(f"a teacher named {u!r} exists already")
            cur = self._conn.execute("INSERT INTO teachers (username, pw_hash, created) VALUES (?,?,?)",
                                     (u, h, time.time()))
            return int(cur.lastrowid)

    def has_teachers(self) -> bool:
        with self.tutor._lock:
            return self._conn.execute("SELECT 1 FROM teachers LIMIT 1").fetchone() is not None

    def authenticate(self, username: Any, password: Any) -> int | None:
        """The teacher's id if the password is right; ``None`` otherwise, taking the same time whether or not
        the account exists."""
        u = str(username or "").strip()[:64]
        pw = str(password or "")
        with self.tutor._lock:
            row = self._conn.execute("SELECT id, pw_hash FROM teachers WHERE username=?", (u,)).fetchone()
        ok = verify_password(row["pw_hash"] if row else None, pw)
        if not ok or row is None:
            return None
        if needs_rehash(row["pw_hash"]):
            with self.tutor._lock:
                self._conn.execute("UPDATE teachers SET pw_hash=? WHERE id=?", (hash_password(pw), row["id"]))
        return int(row["id"])

    def teacher(self, teacher_id: Any) -> dict[str, Any] | None:
        try:
            tid = int(teacher_id)
        except (TypeError, ValueError):
            return None
        with self.tutor._lock:
            row = self._conn.execute("SELECT id, username, created FROM teachers WHERE id=?", (tid,)).fetchone()
        return None if row is None else dict(row)

    # ------------------------------------------------------------------------------------------- classes
    def create_class(self, teacher_id: int, name: Any) -> str:
        n = " ".join(str(name or "").split())
        if not n or len(n) > 60:
            raise AccountError("Please give the class a name of at most 60 characters.")
        cid = "c_" + secrets.token_hex(6)
        with self.tutor._lock:
            self._conn.execute("INSERT INTO classes (id, teacher_id, name, created) VALUES (?,?,?,?)",
                               (cid, int(teacher_id), n, time.time()))
        return cid

    def classes(self, teacher_id: int) -> list[dict[str, Any]]:
        with self.tutor._lock:
            rows = self._conn.execute(
                "SELECT c.id, c.name, c.created, COUNT(l.name) AS learners FROM classes c LEFT JOIN learners l "
                "ON l.class_id = c.id WHERE c.teacher_id=? GROUP BY c.id ORDER BY c.created", (int(teacher_id),))
            return [dict(r) for r in rows]

    def class_of(self, teacher_id: int, class_id: Any) -> dict[str, Any] | None:
        """The class if it is this teacher's (else ``None``, also for another teacher's class)."""
        with self.tutor._lock:
            row = self._conn.execute("SELECT id, name, created FROM classes WHERE id=? AND teacher_id=?",
                                     (str(class_id), int(teacher_id))).fetchone()
        return None if row is None else dict(row)

    def learner_of(self, teacher_id: int, learner_id: Any) -> dict[str, Any] | None:
        """The learner's id, name and class if the learner is in one of this teacher's classes."""
        meta = self.tutor.learner_meta(str(learner_id))
        if meta is None or meta["class_id"] is None or self.class_of(teacher_id, meta["class_id"]) is None:
            return None
        return meta

    def teacher_learners(self, teacher_id: int) -> list[str]:
        return self.tutor.class_learners([c["id"] for c in self.classes(teacher_id)])

    # ----------------------------------------------------------------------------------------- learners
    def _hash_code(self, code: str) -> str:
        return hmac.new(self._code_key, normalize_code(code).encode(), hashlib.sha256).hexdigest()

    def _new_code(self) -> tuple[str, str]:
        while True:
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LEN))
            h = self._hash_code(code)
            if self.tutor.learner_by_code(h) is None:
                return code, h

    def add_learners(self, teacher_id: int, class_id: str, names: Any, grade: Any = None
                     ) -> list[dict[str, str]]:
        """Add one learner per line of ``names`` to the teacher's class; returns ``[{id, name, code}]`` (the
        codes are shown this once). Nothing is added if any name is bad (NameError_/AccountError)."""
        if self.class_of(teacher_id, class_id) is None:
            raise KeyError(class_id)
        lines = [ln for ln in str(names or "").splitlines() if ln.strip()]
        if not lines:
            raise AccountError("Please type at least one name, one per line.")
        if len(lines) > MAX_LEARNERS_PER_ADD:
            raise AccountError(f"Please add at most {MAX_LEARNERS_PER_ADD} learners at a time.")
        clean = []
        for k, ln in enumerate(lines, 1):
            try:
                clean.append(check_name(ln))
            except NameError_ as exc:
                raise AccountError(f"line {k}: {exc}") from None
        g = self.tutor.check_grade(grade)
        out = []
        for n in clean:
            code, h = self._new_code()
            lid = self.tutor.add_learner(n, g, class_id, code_hash=h)
            out.append({"id": lid, "name": n, "code": format_code(code)})
        return out

    def new_code(self, teacher_id: int, learner_id: str) -> str:
        """A new sign-in code for the teacher's learner (the old one stops working); KeyError if not theirs."""
        if self.learner_of(teacher_id, learner_id) is None:
            raise KeyError(learner_id)
        code, h = self._new_code()
        self.tutor.set_code(learner_id, h)
        return format_code(code)

    def learner_for_code(self, code: Any) -> str | None:
        """The learner id a typed sign-in code belongs to (``None``: no such code)."""
        c = normalize_code(code)
        if len(c) != CODE_LEN:
            return None
        return self.tutor.learner_by_code(self._hash_code(c))

    def delete_learner(self, teacher_id: int, learner_id: str) -> bool:
        if self.learner_of(teacher_id, learner_id) is None:
            return False
        return self.tutor.delete_learner(learner_id)
