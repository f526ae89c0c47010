"""Replay backend: a contestant whose answers are read from answer files instead of generated.

Two formats are recognised, per file, from its first non-empty line:

* **Arena-Hard** ``model_answer``: ``{"uid", "model", "messages": [{"role": "user", ...},
  {"role": "assistant", "content": {"answer": "..."}}, ...]}`` (a plain string ``content`` is accepted too).
* **FastChat** answer: ``{"question_id", "model_id", "choices": [{"index": 0, "turns": ["...", ...]}]}``.

A request is matched by prompt id (``str(uid)`` / ``str(question_id)``) and turn index (the k-th assistant
turn answers user turn k). If the exact id is absent, the part after the last ``/`` or ``:`` is tried, so
prompt ids namespaced by a loader (``arena_hard:0122ab...``) still match. When an id occurs twice for a
model, the later line wins. A missing answer is a ``Completion(error=...)`` naming the prompt id and the
file(s); a malformed line raises :class:`DataError` ``"file:line: ..."``.

The strategy is ignored (recorded answers cannot change); ``identity()`` includes the sha256 of every file
that holds the model's answers, so editing a file invalidates its cached generations.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from banditarena.errors import DataError, ModelError
from banditarena.models.base import Backend, ChatRequest
from banditarena.types import Completion, Strategy

ARENA_HARD = "arena-hard"
FASTCHAT = "fastchat"


@dataclass
class _Answer:
    turns: list[str]
    tokens: list[int]
    file: Path
    line: int


def _detect(obj: dict[str, Any]) -> str | None:
    if "uid" in obj and "messages" in obj:
        return ARENA_HARD
    if "question_id" in obj and "choices" in obj:
        return FASTCHAT
    return None


def _parse_line(obj: Any, fmt: str | None, where: str) -> tuple[str, str, str, list[str], list[int]]:
    """-> (format, model, prompt id, assistant turns, token counts). Raises DataError naming ``where``."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    this = _detect(obj)
    if this is None:
        raise DataError(
            f"{where}: not an answer record: need Arena-Hard keys (uid, model, messages) or "
            f"FastChat keys (question_id, model_id, choices)"
        )
    if fmt is not None and this != fmt:
        raise DataError(f"{where}: {this} record in a {fmt} answer file")
    if this == ARENA_HARD:
        model, pid, messages = obj.get("model"), obj["uid"], obj["messages"]
        if not isinstance(model, str) or not model:
            raise DataError(f"{where}: field 'model' missing or not a string")
        if not isinstance(messages, list):
            raise DataError(f"{where}: field 'messages' is not a list")
        turns: list[str] = []
        tokens: list[int] = []
        for k, m in enumerate(messages):
            if not isinstance(m, dict) or "role" not in m:
                raise DataError(f"{where}: messages[{k}] has no 'role'")
            if m["role"] != "assistant":
                continue
            content = m.get("content")
            if isinstance(content, dict):
                answer = content.get("answer")
                tok = content.get("token_len") or m.get("token_len") or 0
            else:
                answer, tok = content, m.get("token_len") or 0
            if not isinstance(answer, str):
                raise DataError(f"{where}: messages[{k}] assistant content has no string 'answer'")
            turns.append(answer)
            tokens.append(int(tok) if isinstance(tok, (int, float)) else 0)
    else:
        model, pid, choices = obj.get("model_id"), obj["question_id"], obj["choices"]
        if not isinstance(model, str) or not model:
            raise DataError(f"{where}: field 'model_id' missing or not a string")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise DataError(f"{where}: field 'choices' must be a non-empty list of objects")
        turns = choices[0].get("turns")  # type: ignore[assignment]
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise DataError(f"{where}: choices[0].turns must be a list of strings")
        tokens = [0] * len(turns)
    if not isinstance(pid, (str, int)) or isinstance(pid, bool) or str(pid) == "":
        raise DataError(f"{where}: prompt id must be a non-empty string or integer")
    return this, model, str(pid), turns, tokens


def _records(path: Path) -> Iterator[tuple[str, str, str, list[str], list[int], int]]:
    """Yield (format, model, prompt id, turns, tokens, line number) for every record of one file."""
    fmt: str | None = None
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
            fmt, model, pid, turns, tokens = _parse_line(obj, fmt, where)
            yield fmt, model, pid, turns, tokens, lineno


def _answer_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".jsonl")
        if not files:
            raise ModelError(f"replay: no .jsonl answer files in directory {path}")
        return files
    if path.is_file():
        return [path]
    raise ModelError(f"replay: answer path {path} does not exist")


def replay_models(path: str | Path) -> dict[str, list[Path]]:
    """Models that have answers in a replay file or directory: ``{model: [files...]}``, sorted by model."""
    found: dict[str, list[Path]] = {}
    for f in _answer_files(Path(path)):
        for _fmt, model, *_rest in _records(f):
            files = found.setdefault(model, [])
            if f not in files:
                files.append(f)
    return dict(sorted(found.items()))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ReplayBackend(Backend):
    """Answers replayed from Arena-Hard ``model_answer`` or FastChat answer files.

    Args:
        model: the model whose answers to replay (``model`` / ``model_id`` field of the records).
        path: one answer file, or a directory of ``*.jsonl`` answer files (``<dir>/<model>.jsonl`` is read
            alone when it exists; otherwise every file is scanned for the model's records). A single file
            that holds the answers of exactly one model answers under any ``model`` name (an alias, e.g.
            ``"reference"``); :attr:`source_model` then names the model recorded in the file.
    """

    kind: ClassVar[str] = "replay"

    def __init__(self, model: str, path: str | Path) -> None:
        super().__init__(model)
        root = Path(path)
        files = _answer_files(root)
        if root.is_dir() and (root / f"{model}.jsonl").is_file():
            files = [root / f"{model}.jsonl"]
        self.path = root
        self.answers: dict[str, _Answer] = {}
        self.files: list[Path] = []
        self.source_model = model
        by_model: dict[str, dict[str, _Answer]] = {}
        for f in files:
            for _fmt, rec_model, pid, turns, tokens, lineno in _records(f):
                by_model.setdefault(rec_model, {})[pid] = _Answer(turns, tokens, f, lineno)
        others = set(by_model) - {model}
        if model not in by_model and root.is_file() and len(by_model) == 1:
            # a single-model file answers under whatever name the contestant gives it
            self.source_model = next(iter(by_model))
        self.answers = by_model.get(self.source_model, {})
        for ans in self.answers.values():
            if ans.file not in self.files:
                self.files.append(ans.file)
        if not self.answers:
            avail = ", ".join(sorted(others)[:12]) or "none"
            raise ModelError(f"replay: no answers of model '{model}' in {root} (models there: {avail})")
        self._hashes = {f.name: _sha256(f) for f in self.files}

    def __repr__(self) -> str:
        return f"ReplayBackend(model={self.model!r}, path={str(self.path)!r}, answers={len(self.answers)})"

    @property
    def prompt_ids(self) -> list[str]:
        """Prompt ids that have an answer, in file order."""
        return list(self.answers)

    def identity(self) -> dict[str, Any]:
        """Backend kind, model and the sha256 of each file holding its answers."""
        ident: dict[str, Any] = {"backend": self.kind, "model": self.model, "files": self._hashes}
        if self.source_model != self.model:
            ident["source_model"] = self.source_model
        return ident

    def lookup(self, prompt_id: str, turn: int = 0) -> Completion:
        """The recorded answer to user turn ``turn`` of ``prompt_id``, or an error completion."""
        pid = str(prompt_id)
        ans = self.answers.get(pid)
        if ans is None:
            tail = re.split(r"[/:]", pid)[-1]
            ans = self.answers.get(tail) if tail != pid else None
        where = ", ".join(str(f) for f in self.files)
        if ans is None:
            return Completion(error=f"replay model '{self.model}': no answer for prompt '{pid}' in {where}")
        if not 0 <= turn < len(ans.turns):
            return Completion(
                error=f"replay model '{self.model}': prompt '{pid}' has {len(ans.turns)} answered turn(s), "
                f"no turn {turn} in {ans.file}:{ans.line}"
            )
        return Completion(text=ans.turns[turn], tokens=ans.tokens[turn], latency_s=0.0)

    async def acomplete(
        self,
        requests: list[ChatRequest],
        strategy: Strategy,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        """Look every request up (the strategy is ignored)."""
        out = [self.lookup(r.prompt_id, r.turn) for r in requests]
        if progress is not None and out:
            progress(len(out))
        return out
