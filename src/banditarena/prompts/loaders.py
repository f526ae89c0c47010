"""Load and save prompt pools.

:func:`load_prompts` reads every prompt format we meet in practice and turns each record into a
:class:`~banditarena.types.Prompt` whose ``messages`` are the user turns (plus a leading system message or
fixed earlier assistant turns when the record has them).

Sources
    * a ``.jsonl`` / ``.json`` / ``.parquet`` path (``data:REL`` resolves under the shared data dir);
    * a ``datasets.Dataset`` / ``datasets.DatasetDict`` object, or a directory written by
      ``Dataset.save_to_disk``;
    * a named shared set: ``mt_bench``, ``vicuna_bench``, ``arena_hard``, ``arena_bench_v1``, ``alpaca_eval``
      (the 805 AlpacaEval instructions, read from the baseline's ``model_outputs.json``, whose answers become
      the references), ``gsm8k:train``, ``gsm8k:test`` (see :data:`NAMED_SETS`).

Record shapes (detected per record)
    * our own :class:`Prompt` dicts and chat rows ``{"messages": [...]}`` (OpenAI/TRL). Trailing assistant
      turns are dropped from the prompt and the last one becomes the reference when none is given;
    * FastChat / MT-Bench ``{"question_id", "category", "turns": [str, ...], "reference": [...]}``;
      ``turns`` may also hold ``{"content": ...}`` dicts (Arena-Hard v0.2 style);
    * ``{"prompt" | "instruction" | "question": str}``; ``prompt`` may also be a list of chat messages (TRL
      conversational prompt); Alpaca's ``input`` is appended to ``instruction``; an AlpacaEval
      ``model_outputs.json`` entry's ``output`` becomes the reference and its ``dataset`` the category;
    * Arena-Hard v0.1 ``{"uid", "category", "cluster", "prompt"}`` (the topic ``cluster`` is kept);
    * GSM8K ``{"question", "answer"}``: the reference is the number after ``####``, the worked solution is
      kept in ``meta["solution"]``.

Ids are strings: ``id_field`` if given, else the first of ``id``, ``question_id``, ``uid``, ``prompt_id``,
``qid``; records without one get ``<stem>-<row>`` (0-based row, stable for an unchanged file).

Errors name the place at fault: ``path:LINE: invalid JSON (...)``, ``path:LINE: empty prompt``,
``path:LINE: duplicate id '...' (first at line N)``; Parquet rows and dataset rows are named ``path:row N``
and ``dataset[i]``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banditarena.errors import DataError
from banditarena.paths import DATA_PREFIX, data_file
from banditarena.text import gsm8k_final, iter_jsonl, read_json
from banditarena.types import Message, Prompt

log = logging.getLogger(__name__)

ID_FIELDS: tuple[str, ...] = ("id", "question_id", "uid", "prompt_id", "qid")
TEXT_FIELDS: tuple[str, ...] = ("prompt", "instruction", "question")
REFERENCE_FIELDS: tuple[str, ...] = ("reference", "reference_answer", "output", "response", "completion")


@dataclass(frozen=True)
class NamedSet:
    """A prompt set of the shared data dir: its question file, optional reference file and defaults."""

    questions: str
    references: str | None = None
    id_prefix: str = ""
    category: str | None = None
    description: str = ""


NAMED_SETS: dict[str, NamedSet] = {
    "mt_bench": NamedSet(
        "mt_bench/question.jsonl",
        "mt_bench/reference_answer_gpt-4.jsonl",
        description="MT-Bench, 80 two-turn",
    ),
    "vicuna_bench": NamedSet(
        "vicuna_bench/question.jsonl", "vicuna_bench/reference_answer_gpt-4.jsonl", description="Vicuna, 80"
    ),
    "arena_hard": NamedSet("arena_hard_v0.1/question.jsonl", description="Arena-Hard v0.1, 500 prompts"),
    "arena_bench_v1": NamedSet(
        "arena_bench_v1/question.jsonl",
        "arena_bench_v1/reference_answer_gpt-4.jsonl",
        description="early Arena-Hard draft, 300 prompts",
    ),
    "alpaca_eval": NamedSet(
        "alpaca_eval/model_outputs/gpt4_1106_preview.json",
        id_prefix="alpaca_eval-",
        description="AlpacaEval, 805 instructions; reference: gpt4_1106_preview's answer (the AlpacaEval 2.0 baseline)",
    ),
    "gsm8k:train": NamedSet("gsm8k/train.jsonl", id_prefix="gsm8k-train-", category="math"),
    "gsm8k:test": NamedSet("gsm8k/test.jsonl", id_prefix="gsm8k-test-", category="math"),
}
# Arena-Hard answers of these models can serve as references (``reference_model=``).
ARENA_HARD_ANSWERS = "arena_hard_v0.1/model_answer"


@dataclass
class LoadResult:
    """What :func:`load_prompts_report` returns: the prompts and where empty records were skipped."""

    prompts: list[Prompt]
    skipped: list[str] = field(default_factory=list)  # "path:LINE" of each skipped empty prompt
    source: str = ""


# --------------------------------------------------------------------------------------------------- public


def load_prompts(
    source: Any,
    *,
    limit: int | None = None,
    id_field: str | None = None,
    text_field: str | None = None,
    split: str | None = None,
    reference_file: str | os.PathLike[str] | None = None,
    reference_model: str | None = None,
    skip_empty: bool = False,
) -> list[Prompt]:
    """Load a prompt pool.

    Args:
        source: a path (``.jsonl``, ``.json``, ``.parquet``, a ``save_to_disk`` directory, ``data:REL``), a
            ``datasets.Dataset``/``DatasetDict``, or a named shared set (:data:`NAMED_SETS`).
        limit: keep the first ``limit`` prompts (in file order).
        id_field: the record field holding the id (default: auto-detect, see module doc).
        text_field: the record field holding the prompt text (default: auto-detect).
        split: the split of a ``DatasetDict`` (default: its only split).
        reference_file: a FastChat answer file (``question_id``, ``choices[0].turns``) whose answers become
            the references; named sets use their GPT-4 reference file when they have one.
        reference_model: for ``arena_hard``: take the references from that model's answers in
            ``arena_hard_v0.1/model_answer`` (e.g. ``"gpt-4-0314"``, the Arena-Hard baseline).
        skip_empty: skip records whose prompt is empty instead of raising; they are counted and reported
            in a warning (use :func:`load_prompts_report` to get the list).

    Raises:
        DataError: unreadable/malformed input, an empty prompt (unless ``skip_empty``), a duplicate id, an
            unknown set name.
    """
    return load_prompts_report(
        source,
        limit=limit,
        id_field=id_field,
        text_field=text_field,
        split=split,
        reference_file=reference_file,
        reference_model=reference_model,
        skip_empty=skip_empty,
    ).prompts


def load_prompts_report(
    source: Any,
    *,
    limit: int | None = None,
    id_field: str | None = None,
    text_field: str | None = None,
    split: str | None = None,
    reference_file: str | os.PathLike[str] | None = None,
    reference_model: str | None = None,
    skip_empty: bool = False,
) -> LoadResult:
    """:func:`load_prompts`, also returning the locations of skipped empty prompts."""
    if limit is not None and limit < 0:
        raise DataError(f"limit must be >= 0, got {limit}")
    if reference_file is not None and reference_model is not None:
        raise DataError("give reference_file or reference_model, not both")
    opts = {"id_field": id_field, "text_field": text_field, "skip_empty": skip_empty, "limit": limit}
    named: NamedSet | None = None
    label: str
    if _is_dataset(source):
        label = "dataset"
        result = _parse_records(_dataset_rows(source, split, "dataset"), label, stem="dataset", **opts)
    else:
        path, named = _resolve_source(source)
        label = str(path)
        if path.is_dir():
            result = _parse_records(
                _dataset_rows(_load_from_disk(path), split, str(path)), label, stem=path.name, **opts
            )
        else:
            stem = path.stem
            prefix = named.id_prefix if named else ""
            result = _parse_records(_file_rows(path), label, stem=stem, id_prefix=prefix, **opts)
        if named is not None:
            name = str(source)
            for p in result.prompts:
                p.source = name
                if named.category and p.category is None:
                    p.category = named.category
            default_refs = data_file(named.references) if named.references else None
            if reference_file is None and reference_model is None and default_refs and default_refs.exists():
                reference_file = default_refs
    if reference_model is not None:
        reference_file = data_file(f"{ARENA_HARD_ANSWERS}/{reference_model}.jsonl")
        if not reference_file.exists():
            known = sorted(f.stem for f in reference_file.parent.glob("*.jsonl"))
            raise DataError(
                f"no answers of model '{reference_model}' in {reference_file.parent}; known: {known}"
            )
    if reference_file is not None:
        _attach_references(result.prompts, Path(reference_file))
    if result.skipped:
        head = ", ".join(result.skipped[:3]) + (" ..." if len(result.skipped) > 3 else "")
        msg = f"{label}: skipped {len(result.skipped)} empty prompt(s) at {head}"
        log.warning(msg)
        warnings.warn(msg, stacklevel=3)
    result.source = label
    return result


def save_prompts(prompts: Iterable[Prompt], path: str | os.PathLike[str]) -> Path:
    """Write prompts as JSONL (one :meth:`Prompt.to_dict` per line) or Parquet, by the file suffix.

    Both round-trip through :func:`load_prompts`. In Parquet, ``meta`` is stored as a JSON string (its keys
    differ from row to row); ``messages`` is a list of ``{role, content}`` structs that
    ``datasets.load_dataset("parquet", ...)`` reads as chat messages. The write is atomic.
    """
    path = Path(path)
    rows = [p.to_dict() for p in prompts]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with tmp.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        msg_type = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
        schema = pa.schema(
            [
                ("id", pa.string()),
                ("messages", msg_type),
                ("category", pa.string()),
                ("cluster", pa.string()),
                ("reference", pa.string()),
                ("source", pa.string()),
                ("meta", pa.string()),
            ]
        )
        cols: dict[str, list[Any]] = {name: [] for name in schema.names}
        for r in rows:
            for name in schema.names:
                v = r.get(name)
                if name == "meta":
                    v = json.dumps(v or {}, ensure_ascii=False, default=str)
                elif name == "messages":
                    v = [{"role": m["role"], "content": m["content"]} for m in v]
                elif v is not None and name != "messages":
                    v = str(v)
                cols[name].append(v)
        pq.write_table(pa.table(cols, schema=schema), tmp)
    else:
        raise DataError(f"{path}: unsupported suffix '{path.suffix}' (use .jsonl or .parquet)")
    tmp.replace(path)
    return path


def named_sets() -> list[str]:
    """Names accepted by :func:`load_prompts` for the shared data sets."""
    return list(NAMED_SETS)


# ------------------------------------------------------------------------------------------------ sources


def _resolve_source(source: Any) -> tuple[Path, NamedSet | None]:
    if isinstance(source, os.PathLike):
        path = Path(source)
        if not path.exists():
            raise DataError(f"{path}: file not found")
        return path, None
    if not isinstance(source, str):
        raise DataError(
            f"cannot load prompts from a {type(source).__name__}: give a path, a datasets.Dataset or a set name"
        )
    if source in NAMED_SETS:
        path = data_file(NAMED_SETS[source].questions)
        if not path.exists():
            raise DataError(
                f"shared set '{source}' not found at {path}: set BANDITARENA_DATA to the shared data folder"
            )
        return path, NAMED_SETS[source]
    if source.startswith(DATA_PREFIX):
        path = data_file(source[len(DATA_PREFIX) :])
    else:
        path = Path(os.path.expanduser(source))
    if path.exists():
        return path, None
    if path.suffix or os.sep in source or "/" in source:
        raise DataError(f"{path}: file not found")
    raise DataError(f"unknown prompt set '{source}': known sets are {', '.join(NAMED_SETS)} (or give a path)")


def _is_dataset(obj: Any) -> bool:
    mod = type(obj).__module__ or ""
    return mod.startswith("datasets.") and type(obj).__name__ in {"Dataset", "DatasetDict"}


def _load_from_disk(path: Path) -> Any:
    if not any((path / f).exists() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
        raise DataError(f"{path}: a directory but not a datasets.save_to_disk folder")
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets ships with the ml extra
        raise DataError(f"{path}: reading a datasets folder needs `pip install datasets`") from e
    try:
        return datasets.load_from_disk(str(path))
    except Exception as e:
        raise DataError(f"{path}: cannot load datasets folder ({type(e).__name__}: {e})") from e


def _dataset_rows(ds: Any, split: str | None, label: str) -> Iterator[tuple[str, Any]]:
    if type(ds).__name__ == "DatasetDict":
        splits = list(ds.keys())
        if split is None:
            if len(splits) != 1:
                raise DataError(f"{label}: a DatasetDict with splits {splits}: choose one with split=")
            split = splits[0]
        if split not in ds:
            raise DataError(f"{label}: no split '{split}' (splits: {splits})")
        ds, label = ds[split], f"{label}[{split}]"
    elif split is not None:
        raise DataError(f"{label}: split='{split}' given but the source is a single Dataset")
    for i, row in enumerate(ds):
        yield f"{label}[{i}]", row


def _file_rows(path: Path) -> Iterator[tuple[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl" or suffix == ".ndjson":
        for lineno, rec in iter_jsonl(path):
            yield f"{path}:{lineno}", rec
    elif suffix == ".json":
        data = read_json(path)
        if isinstance(data, dict):  # {"data": [...]} / {"prompts": [...]} wrappers
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise DataError(f"{path}: expected a JSON list of records")
            data = lists[0]
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of records")
        for i, rec in enumerate(data):
            yield f"{path}[{i}]", rec
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as e:
            raise DataError(f"{path}: not a readable Parquet file ({e})") from e
        row = 0
        for batch in pf.iter_batches(batch_size=4096):
            for rec in batch.to_pylist():
                row += 1
                yield f"{path}:row {row}", rec
    else:
        raise DataError(f"{path}: unsupported file type '{path.suffix}' (use .jsonl, .json or .parquet)")


# -------------------------------------------------------------------------------------------------- records


def _parse_records(
    rows: Iterable[tuple[str, Any]],
    label: str,
    *,
    stem: str,
    id_field: str | None,
    text_field: str | None,
    skip_empty: bool,
    limit: int | None,
    id_prefix: str = "",
) -> LoadResult:
    prompts: list[Prompt] = []
    skipped: list[str] = []
    seen: dict[str, str] = {}
    if limit == 0:
        return LoadResult(prompts, skipped)
    for row, (where, rec) in enumerate(rows):
        if not isinstance(rec, Mapping):
            raise DataError(f"{where}: expected a JSON object, got {type(rec).__name__}")
        try:
            p = _record_to_prompt(rec, where, row, stem, id_field, text_field, id_prefix)
        except _EmptyPrompt:
            if skip_empty:
                skipped.append(where)
                continue
            raise DataError(f"{where}: empty prompt") from None
        if p.id in seen:
            raise DataError(f"{where}: duplicate id '{p.id}' (first at {seen[p.id]})")
        seen[p.id] = where
        prompts.append(p)
        if limit is not None and len(prompts) >= limit:
            break
    return LoadResult(prompts, skipped)


class _EmptyPrompt(Exception):
    pass


def _content_text(content: Any, where: str) -> str:
    """A message content as text: a string, OpenAI content parts, or ``{"answer"|"text"|"content": ...}``."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        for k in ("text", "answer", "content"):
            if isinstance(content.get(k), str):
                return content[k]
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text" and "text" in part:
                parts.append(str(part["text"]))
            else:
                raise DataError(f"{where}: unsupported message content part {str(part)[:60]!r}")
        return "".join(parts)
    raise DataError(f"{where}: message content must be text, got {type(content).__name__}")


def _messages_from_chat(msgs: Any, where: str) -> tuple[list[Message], str | None]:
    """Chat messages -> (prompt messages, reference). Trailing assistant turns are cut off the prompt."""
    if not isinstance(msgs, Sequence) or isinstance(msgs, str):
        raise DataError(f"{where}: 'messages' must be a list of {{role, content}} objects")
    out: list[Message] = []
    for i, m in enumerate(msgs):
        if not isinstance(m, Mapping) or "role" not in m:
            raise DataError(f"{where}: messages[{i}] is not a {{role, content}} object")
        role = str(m["role"])
        if role not in ("system", "user", "assistant"):
            raise DataError(f"{where}: messages[{i}] has unknown role '{role}'")
        out.append({"role": role, "content": _content_text(m.get("content"), f"{where}: messages[{i}]")})
    reference = None
    while out and out[-1]["role"] == "assistant":
        last = out.pop()
        if reference is None:
            reference = last["content"]
    return out, reference


def _turns_to_messages(turns: Any, where: str) -> list[Message]:
    if isinstance(turns, str):
        turns = [turns]
    if not isinstance(turns, Sequence):
        raise DataError(f"{where}: 'turns' must be a list")
    msgs: list[Message] = []
    for i, t in enumerate(turns):
        if isinstance(t, Mapping):
            if t.get("role", "user") == "assistant":
                msgs.append({"role": "assistant", "content": _content_text(t.get("content"), where)})
                continue
            t = t.get("content")
        msgs.append({"role": "user", "content": _content_text(t, f"{where}: turns[{i}]")})
    return msgs


def _record_to_prompt(
    rec: Mapping[str, Any],
    where: str,
    row: int,
    stem: str,
    id_field: str | None,
    text_field: str | None,
    id_prefix: str,
) -> Prompt:
    meta: dict[str, Any] = {}
    reference: str | None = None
    if text_field is not None:
        if text_field not in rec:
            raise DataError(f"{where}: no field '{text_field}'")
        v = rec[text_field]
        if isinstance(v, Sequence) and not isinstance(v, str) and v and isinstance(v[0], Mapping):
            messages, reference = _messages_from_chat(v, where)
        else:
            messages = [{"role": "user", "content": _content_text(v, where)}]
    elif "messages" in rec and rec["messages"] is not None:
        messages, reference = _messages_from_chat(rec["messages"], where)
    elif "turns" in rec and rec["turns"] is not None:
        messages = _turns_to_messages(rec["turns"], where)
    else:
        key = next((k for k in TEXT_FIELDS if k in rec and rec[k] is not None), None)
        if key is None:
            raise DataError(
                f"{where}: no prompt field (expected one of messages, turns, {', '.join(TEXT_FIELDS)})"
            )
        v = rec[key]
        if key == "prompt" and isinstance(v, Sequence) and not isinstance(v, str):
            messages, reference = _messages_from_chat(v, where)  # TRL conversational prompt
        else:
            text = _content_text(v, where)
            extra = rec.get("input")
            if key == "instruction" and isinstance(extra, str) and extra.strip():
                text = f"{text}\n\n{extra}"
            messages = [{"role": "user", "content": text}]
    users = [m for m in messages if m["role"] == "user"]
    if not users or any(not m["content"].strip() for m in users):
        raise _EmptyPrompt

    # id
    if id_field is not None:
        if rec.get(id_field) is None:
            raise DataError(f"{where}: no id field '{id_field}'")
        pid = str(rec[id_field])
    else:
        key = next((k for k in ID_FIELDS if rec.get(k) is not None), None)
        pid = str(rec[key]) if key else f"{id_prefix or stem + '-'}{row}"
    if not pid.strip():
        raise DataError(f"{where}: empty id")

    # reference
    answer = rec.get("answer")
    if isinstance(answer, str) and "####" in answer:  # GSM8K
        meta["solution"] = answer
        reference = gsm8k_final(answer)
    elif isinstance(answer, str) and reference is None:
        reference = answer
    for k in REFERENCE_FIELDS:
        v = rec.get(k)
        if v is None or (k == "output" and "instruction" not in rec):
            continue
        if isinstance(v, str):
            reference = v
        elif isinstance(v, Sequence) and v and all(isinstance(x, str) for x in v):  # FastChat per-turn list
            meta["reference_turns"] = list(v)
            reference = v[-1]
        break

    cluster = rec.get("cluster")
    category = rec.get("category")
    if category is None and "instruction" in rec and isinstance(rec.get("dataset"), str):
        category = rec["dataset"]  # AlpacaEval: helpful_base, koala, oasst, selfinstruct, vicuna
    src_meta = rec.get("meta")
    if isinstance(src_meta, str):
        try:
            src_meta = json.loads(src_meta)
        except json.JSONDecodeError:
            src_meta = {"meta": src_meta}
    if isinstance(src_meta, Mapping):
        meta = {**src_meta, **meta}
    return Prompt(
        id=pid,
        messages=messages,
        category=None if category is None else str(category),
        cluster=None if cluster is None else str(cluster),
        reference=reference,
        source=rec.get("source") if isinstance(rec.get("source"), str) else None,
        meta=meta,
    )


def _attach_references(prompts: list[Prompt], path: Path) -> None:
    """Set each prompt's reference from an answer file (FastChat ``choices[0].turns`` or Arena-Hard messages).

    The reference is the answer to the prompt's last user turn; all answer turns go to
    ``meta["reference_turns"]``. A reference file replaces inline references (kept in
    ``meta["inline_reference"]``); prompts without an entry keep no reference.
    """
    refs: dict[str, list[str]] = {}
    for where, rec in _file_rows(path):
        if not isinstance(rec, Mapping):
            raise DataError(f"{where}: expected a JSON object")
        qid = next((rec[k] for k in ("question_id", "uid", "id") if rec.get(k) is not None), None)
        if qid is None:
            raise DataError(f"{where}: answer has no question_id/uid")
        if "choices" in rec:
            try:
                turns = [_content_text(t, where) for t in rec["choices"][0]["turns"]]
            except (KeyError, IndexError, TypeError):
                raise DataError(f"{where}: expected choices[0].turns") from None
        elif "messages" in rec:
            turns = [
                _content_text(m.get("content"), where)
                for m in rec["messages"]
                if isinstance(m, Mapping) and m.get("role") == "assistant"
            ]
        else:
            raise DataError(f"{where}: answer has neither choices[0].turns nor messages")
        refs[str(qid)] = turns
    for p in prompts:
        if p.reference is not None:
            p.meta.setdefault("inline_reference", p.reference)
            if "reference_turns" in p.meta:
                p.meta["inline_reference_turns"] = p.meta.pop("reference_turns")
        turns = refs.get(p.id)
        if not turns:
            p.reference = None
            continue
        n_user = len(p.user_turns)
        p.reference = turns[min(n_user, len(turns)) - 1]
        p.meta["reference_turns"] = turns
        p.meta["reference_source"] = path.name
