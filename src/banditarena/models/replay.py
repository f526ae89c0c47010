"""Replay backend: a contestant whose answers are read from answer files instead of generated.

Three formats are recognised, per file (JSONL ones from their first non-empty line):

* **Arena-Hard** ``model_answer``: ``{"uid", "model", "messages": [{"role": "user", ...},
  {"role": "assistant", "content": {"answer": "..."}}, ...]}`` (a plain string ``content`` is accepted too).
* **FastChat** answer: ``{"question_id", "model_id", "choices": [{"index": 0, "turns": ["...", ...]}]}``.
* **AlpacaEval** ``model_outputs.json`` (a ``.json`` file): a JSON list of ``{"instruction", "output",
  "generator"}`` (``generator`` defaults to the file name). AlpacaEval files carry no ids: an answer is
  matched by its instruction text (the request's last user turn, whitespace-trimmed), so any prompt set
  holding the same instructions works (e.g. the named set ``alpaca_eval``). :meth:`ReplayBackend.check_prompts`
  names the first entry whose instruction is not in a prompt set. A file that is not a JSON list, or an
  entry without a string ``instruction``/``output``, raises :class:`DataError` ``"file[k]: ..."``.

A request is matched by prompt id (``str(uid)`` / ``str(question_id)``) and turn index (the k-th assistant
turn answers user turn k). If the exact id is absent, the part after the last ``/`` or ``:`` is tried, so
prompt ids namespaced by a loader (``arena_hard:0122ab...``) still match. When an id occurs twice for a
model, the later line wins. A missing answer is a ``Completion(error=...)`` naming the prompt id and the
file(s); a malformed line raises :class:`DataError` ``"file:line: ..."``.

The strategy is ignored (recorded answers cannot change); ``identity()`` includes the sha256 of every file
that holds the model's answers, so editing a file invalidates its cached generations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from banditarena.errors import DataError, ModelError
from banditarena.models.base import Backend, ChatRequest
from banditarena.text import expand_files, iter_jsonl, read_maybe_gzip
from banditarena.types import Completion, Prompt, Strategy, file_sha256, stable_hash

ARENA_HARD = "arena-hard"
FASTCHAT = "fastchat"
ALPACA_EVAL = "alpaca_eval"


def instruction_key(text: str) -> str:
    """The id an AlpacaEval answer is stored under: a hash of its whitespace-trimmed instruction."""
    return "instruction:" + stable_hash(text.strip(), 24)


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


def _alpaca_records(path: Path) -> Iterator[tuple[str, str, str, list[str], list[int], int]]:
    """AlpacaEval ``model_outputs.json`` (plain or gzipped): yield (format, model, instruction key, [output], [0],
    entry index). An AlpacaEval *annotation* file (``output_2``/``generator_2`` entries, e.g. the adversarial
    submissions) replays its ``output_2`` answers."""
    try:
        data = json.loads(read_maybe_gzip(path).decode("utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(data, list):
        raise DataError(f"{path}: an AlpacaEval outputs file must be a JSON list of "
                        f"{{instruction, output, generator}} entries, got a JSON {type(data).__name__}")
    if not data:
        raise DataError(f"{path}: the AlpacaEval outputs list is empty")
    for k, rec in enumerate(data):
        where = f"{path}[{k}]"
        if not isinstance(rec, dict):
            raise DataError(f"{where}: expected an object with instruction and output, got {type(rec).__name__}")
        instruction, output = rec.get("instruction"), rec.get("output")
        if output is None and isinstance(rec.get("output_2"), str):  # an annotation file: replay output_2
            output, rec = rec["output_2"], {**rec, "generator": rec.get("generator_2")}
        if not isinstance(instruction, str) or not instruction.strip():
            raise DataError(f"{where}: entry has no string 'instruction'")
        if not isinstance(output, str):
            raise DataError(f"{where}: entry has no string 'output'")
        model = rec.get("generator")
        model = model if isinstance(model, str) and model else path.stem
        yield ALPACA_EVAL, model, instruction_key(instruction), [output], [0], k


def _records(path: Path) -> Iterator[tuple[str, str, str, list[str], list[int], int]]:
    """Yield (format, model, prompt id, turns, tokens, line number) for every record of one file."""
    if path.suffix.lower() == ".json" or path.name.lower().endswith(".json.gz"):
        yield from _alpaca_records(path)
        return
    fmt: str | None = None
    for lineno, obj in iter_jsonl(path):
        fmt, model, pid, turns, tokens = _parse_line(obj, fmt, f"{path}:{lineno}")
        yield fmt, model, pid, turns, tokens, lineno


def _answer_files(path: Path) -> list[Path]:
    return expand_files([path], (".jsonl", ".json"), error=ModelError,
                        empty="replay: no .jsonl or .json answer files in directory {path}",
                        missing="replay: answer path {path} does not exist")


def replay_models(path: str | Path) -> dict[str, list[Path]]:
    """Models that have answers in a replay file or directory: ``{model: [files...]}``, sorted by model."""
    found: dict[str, list[Path]] = {}
    for f in _answer_files(Path(path)):
        for _fmt, model, *_rest in _records(f):
            files = found.setdefault(model, [])
            if f not in files:
                files.append(f)
    return dict(sorted(found.items()))


def _user_turn(messages: list[dict[str, str]], turn: int) -> str | None:
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    return users[turn] if 0 <= turn < len(users) else (users[-1] if users else None)


class ReplayBackend(Backend):
    """Answers replayed from Arena-Hard ``model_answer``, FastChat answer or AlpacaEval outputs files.

    Args:
        model: the model whose answers to replay (``model`` / ``model_id`` / ``generator`` of the records).
        path: one answer file, or a directory of ``*.jsonl``/``*.json`` answer files (``<dir>/<model>.jsonl``
            or ``<dir>/<model>.json`` is read alone when it exists; otherwise every file is scanned). A single file
            that holds the answers of exactly one model answers under any ``model`` name (an alias, e.g.
            ``"reference"``); :attr:`source_model` then names the model recorded in the file.
    """

    kind: ClassVar[str] = "replay"

    def __init__(self, model: str, path: str | Path) -> None:
        super().__init__(model)
        root = Path(path)
        files = _answer_files(root)
        own = [root / f"{model}{ext}" for ext in (".jsonl", ".json")] if root.is_dir() else []
        if any(f.is_file() for f in own):
            files = [next(f for f in own if f.is_file())]
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
        self._hashes = {f.name: file_sha256(f) for f in self.files}

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

    @property
    def by_instruction(self) -> bool:
        """True for AlpacaEval outputs: answers are matched by instruction text, not by prompt id."""
        return any(k.startswith("instruction:") for k in self.answers)

    def check_prompts(self, prompts: list[Prompt], source: str = "the prompt set") -> None:
        """Raise :class:`DataError` naming the first AlpacaEval entry whose instruction is not in ``prompts``.

        Only AlpacaEval outputs are checked (their answers are matched by instruction text, so an entry
        whose text differs from every prompt would silently never be used); other formats pass.
        """
        if not self.by_instruction:
            return
        known = {instruction_key(p.text) for p in prompts}
        for f in self.files:
            entries = json.loads(f.read_text(encoding="utf-8"))  # validated when the backend was built
            for k, rec in enumerate(entries):
                if instruction_key(rec["instruction"]) not in known:
                    raise DataError(f"{f}[{k}]: instruction {rec['instruction'].strip()[:60]!r} is not in {source} "
                                    f"({len(prompts)} prompts): the outputs must answer the same instructions")

    def lookup(self, prompt_id: str, turn: int = 0, text: str | None = None) -> Completion:
        """The recorded answer to user turn ``turn`` of ``prompt_id``, or an error completion.

        ``text`` (the user turn) matches AlpacaEval answers, which are stored by instruction text.
        """
        pid = str(prompt_id)
        ans = self.answers.get(pid)
        if ans is None:
            tail = re.split(r"[/:]", pid)[-1]
            ans = self.answers.get(tail) if tail != pid else None
        if ans is None and text is not None:
            ans = self.answers.get(instruction_key(text))
        where = ", ".join(str(f) for f in self.files)
        if ans is None:
            if self.by_instruction:
                return Completion(error=f"replay model '{self.model}': no answer to the instruction of prompt "
                                        f"'{pid}' in {where}")
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
        out = [self.lookup(r.prompt_id, r.turn, _user_turn(r.messages, r.turn)) for r in requests]
        if progress is not None and out:
            progress(len(out))
        return out


def alpaca_outputs(path: str | Path) -> dict[str, list[tuple[str, str]]]:
    """AlpacaEval outputs: ``{model: [(instruction, output), ...]}`` in file order, from one ``.json`` file or
    a folder of them (one model per file, named by ``generator``). Raises :class:`DataError` like the backend."""
    root = Path(path)
    files = sorted(p for p in root.iterdir() if p.suffix == ".json") if root.is_dir() else [root]
    if not files:
        raise DataError(f"{root}: no AlpacaEval .json outputs files")
    out: dict[str, list[tuple[str, str]]] = {}
    for f in files:
        if not f.is_file():
            raise DataError(f"{f}: file not found")
        data = json.loads(read_maybe_gzip(f).decode("utf-8")) if f.name.endswith((".json", ".json.gz")) else None
        for _fmt, model, _key, turns, _tok, k in _alpaca_records(f):
            out.setdefault(model, []).append((data[k]["instruction"], turns[0]))  # type: ignore[index]
    return out
