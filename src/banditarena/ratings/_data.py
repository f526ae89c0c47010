"""Battle input: validation, per-battle arrays and the aggregated pair counts every fit starts from.

Accepted inputs everywhere in :mod:`banditarena.ratings`:

* a pandas DataFrame with columns ``model_a``, ``model_b``, ``winner`` and optionally ``weight``;
* a list (or any iterable) of dicts, or of objects with those attributes (e.g. ``banditarena.types.Battle``);
* a path (``str`` or ``os.PathLike``) to a ``.parquet``/``.pq`` file (streamed in chunks) or a
  ``.jsonl``/``.json`` file (one JSON object per line);
* an already aggregated :class:`PairCounts`.

``winner`` is one of ``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``. A bad row raises
:class:`RatingsInputError` whose one-line message gives the row number (0-based position for in-memory
inputs and Parquet files, ``path:line`` with 1-based line numbers for JSONL).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

WINNER_CODES: dict[str, int] = {"model_a": 0, "model_b": 1, "tie": 2, "tie (bothbad)": 2}
"""Outcome codes: 0 = model_a won, 1 = model_b won, 2 = tie (a tie counts as half a win for each side)."""

REQUIRED_COLUMNS = ("model_a", "model_b", "winner")


class RatingsInputError(ValueError):
    """Battles that cannot be rated: missing column, bad winner, empty model name, bad weight.

    The message is one line and names the row (or file:line) at fault. Callers in the rest of the
    package wrap it into ``banditarena.errors.DataError``.
    """

    def __str__(self) -> str:  # always one line
        return " ".join(super().__str__().split())


@dataclass(frozen=True)
class BattleArrays:
    """Battles as integer arrays, in input order.

    ``models`` is sorted; ``a``/``b`` index into it; ``outcome`` uses :data:`WINNER_CODES`;
    ``weight`` is ``None`` when every battle weighs 1.
    """

    models: np.ndarray
    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.a.shape[0])


@dataclass(frozen=True)
class PairCounts:
    """Outcome counts per unordered model pair: all a Bradley-Terry fit needs.

    For pair ``k`` (``i[k] < j[k]``, indices into ``models``):

    * ``n[k] = [wins of i, wins of j, ties]`` as row counts (what the bootstrap resamples);
    * ``w[k]`` the same three cells as sums of battle weights (equal to ``n`` when unweighted).

    Build one with :func:`aggregate` (any input) or :func:`aggregate_parquet` (streaming); merge
    counts of several sources with :meth:`merge`.
    """

    models: tuple[str, ...]
    i: np.ndarray
    j: np.ndarray
    n: np.ndarray
    w: np.ndarray

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_battles(self) -> int:
        """Number of battles (rows)."""
        return int(self.n.sum())

    @property
    def weighted(self) -> bool:
        return not np.array_equal(self.w, self.n.astype(np.float64))

    def per_model(self) -> pd.DataFrame:
        """Row counts per model: ``battles``, ``wins``, ``losses``, ``ties``."""
        m = self.n_models
        wins = np.bincount(self.i, self.n[:, 0], m) + np.bincount(self.j, self.n[:, 1], m)
        losses = np.bincount(self.i, self.n[:, 1], m) + np.bincount(self.j, self.n[:, 0], m)
        ties = np.bincount(self.i, self.n[:, 2], m) + np.bincount(self.j, self.n[:, 2], m)
        out = pd.DataFrame(
            {"battles": wins + losses + ties, "wins": wins, "losses": losses, "ties": ties},
            index=pd.Index(list(self.models), name="model"),
        )
        return out.astype(np.int64)

    def score_matrix(self, weighted: bool = True) -> np.ndarray:
        """``S[i, j]`` = wins of i over j plus half the ties (weighted sums unless ``weighted=False``)."""
        c = self.w if weighted else self.n.astype(np.float64)
        m = self.n_models
        s = np.zeros((m, m))
        s[self.i, self.j] = c[:, 0] + 0.5 * c[:, 2]
        s[self.j, self.i] = c[:, 1] + 0.5 * c[:, 2]
        return s

    def merge(self, other: PairCounts) -> PairCounts:
        """Counts of both sources together (models are matched by name)."""
        models = np.array(sorted(set(self.models) | set(other.models)), dtype=object)
        parts = []
        for pc in (self, other):
            remap = np.searchsorted(models, np.array(pc.models, dtype=object))
            parts.append((remap[pc.i], remap[pc.j], pc.n, pc.w))
        i = np.concatenate([p[0] for p in parts])
        j = np.concatenate([p[1] for p in parts])
        n = np.concatenate([p[2] for p in parts])
        w = np.concatenate([p[3] for p in parts])
        return _collapse(tuple(models), i, j, n, w)

    def subset(self, rows: np.ndarray) -> PairCounts:
        """Counts restricted to the pairs at positions ``rows``."""
        return PairCounts(self.models, self.i[rows], self.j[rows], self.n[rows], self.w[rows])


def _collapse(models: tuple[str, ...], i: np.ndarray, j: np.ndarray, n: np.ndarray, w: np.ndarray) -> PairCounts:
    """Sum duplicate (i, j) pairs (i < j already) into one row each, sorted by (i, j)."""
    m = len(models)
    key = i.astype(np.int64) * m + j.astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    n_out = np.zeros((uniq.size, 3), dtype=np.int64)
    w_out = np.zeros((uniq.size, 3), dtype=np.float64)
    for c in range(3):
        n_out[:, c] = np.bincount(inv, n[:, c], uniq.size).round().astype(np.int64)
        w_out[:, c] = np.bincount(inv, w[:, c], uniq.size)
    return PairCounts(models, (uniq // m).astype(np.int64), (uniq % m).astype(np.int64), n_out, w_out)


def counts_from_arrays(arr: BattleArrays) -> PairCounts:
    """One O(battles) pass: fold every battle onto its unordered pair and count the outcomes."""
    m = len(arr.models)
    a = arr.a.astype(np.int64)
    b = arr.b.astype(np.int64)
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    # outcome from the point of view of the lower index: swap a-wins/b-wins when a is the higher index
    o = arr.outcome.astype(np.int64)
    swapped = a > b
    o = np.where(swapped & (o < 2), 1 - o, o)
    if m * m * 3 <= 30_000_000:
        cell = (lo * m + hi) * 3 + o
        size = m * m * 3
        n_flat = np.bincount(cell, minlength=size)
        w_flat = n_flat.astype(np.float64) if arr.weight is None else np.bincount(cell, arr.weight, size)
        pair_n = n_flat.reshape(m * m, 3)
        keep = np.flatnonzero(pair_n.sum(axis=1))
        return PairCounts(
            tuple(arr.models.tolist()),
            (keep // m).astype(np.int64),
            (keep % m).astype(np.int64),
            pair_n[keep].astype(np.int64),
            w_flat.reshape(m * m, 3)[keep],
        )
    key = lo * m + hi
    uniq, inv = np.unique(key, return_inverse=True)
    cell = inv * 3 + o
    n_flat = np.bincount(cell, minlength=uniq.size * 3)
    w_flat = n_flat.astype(np.float64) if arr.weight is None else np.bincount(cell, arr.weight, uniq.size * 3)
    return PairCounts(
        tuple(arr.models.tolist()),
        (uniq // m).astype(np.int64),
        (uniq % m).astype(np.int64),
        n_flat.reshape(-1, 3).astype(np.int64),
        w_flat.reshape(-1, 3),
    )


# ----------------------------------------------------------------------------------------------- parsing


def _where(source: str | None, pos: int) -> str:
    return f"{source}: row {pos}" if source else f"row {pos}"


def _codes_for(values: Any, column: str, source: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Factorize a model-name column; reject missing / empty names with the row number."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if (codes < 0).any():
        pos = int(np.flatnonzero(codes < 0)[0])
        raise RatingsInputError(f"{_where(source, pos)}: {column} is missing")
    uniques = np.asarray(uniques, dtype=object)
    bad = [k for k, u in enumerate(uniques) if not isinstance(u, str) or not u.strip()]
    if bad:
        pos = int(np.flatnonzero(np.isin(codes, bad))[0])
        raise RatingsInputError(
            f"{_where(source, pos)}: {column} must be a non-empty model name, got {uniques[bad[0]]!r}"
        )
    return codes, uniques


def _outcomes(values: Any, source: str | None, drop_invalid: bool) -> np.ndarray:
    """Map winner labels to outcome codes (-1 marks a missing winner that ``drop_invalid`` drops)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=np.int8)
    table[-1] = -1  # NaN / None
    for k, u in enumerate(uniques):
        code = WINNER_CODES.get(u) if isinstance(u, str) else None
        if code is None:
            pos = int(np.flatnonzero(codes == k)[0])
            allowed = ", ".join(sorted(WINNER_CODES))
            raise RatingsInputError(f"{_where(source, pos)}: winner {u!r} is not one of: {allowed}")
        table[k] = code
    out = table[codes]
    if not drop_invalid and (out < 0).any():
        pos = int(np.flatnonzero(out < 0)[0])
        raise RatingsInputError(f"{_where(source, pos)}: winner is missing (pass drop_invalid=True to skip)")
    return out


def _weights(values: Any, source: str | None) -> np.ndarray:
    try:
        w = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        series = pd.to_numeric(pd.Series(values), errors="coerce")
        pos = int(np.flatnonzero(series.isna().to_numpy())[0])
        raise RatingsInputError(f"{_where(source, pos)}: weight must be a number") from None
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise RatingsInputError(f"{_where(source, pos)}: weight must be finite and >= 0, got {w[pos]!r}")
    return w


def arrays_from_frame(
    df: pd.DataFrame, *, source: str | None = None, drop_invalid: bool = False, weight: str | None = "weight"
) -> BattleArrays:
    """Validate a battle DataFrame and turn it into :class:`BattleArrays` (row numbers are positions)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        where = f"{source}: " if source else ""
        raise RatingsInputError(f"{where}missing column(s) {', '.join(missing)}; have {list(df.columns)}")
    if len(df) == 0:
        raise RatingsInputError(f"{source + ': ' if source else ''}no battles to rate")
    ca, ua = _codes_for(df["model_a"], "model_a", source)
    cb, ub = _codes_for(df["model_b"], "model_b", source)
    outcome = _outcomes(df["winner"], source, drop_invalid)
    w = _weights(df[weight].to_numpy(), source) if weight and weight in df.columns else None
    models = np.array(sorted(set(ua.tolist()) | set(ub.tolist())), dtype=object)
    a = np.searchsorted(models, ua)[ca]
    b = np.searchsorted(models, ub)[cb]
    same = a == b
    if same.any():
        pos = int(np.flatnonzero(same)[0])
        raise RatingsInputError(f"{_where(source, pos)}: model_a and model_b are the same ({models[a[pos]]!r})")
    if drop_invalid and (outcome < 0).any():
        keep = outcome >= 0
        a, b, outcome = a[keep], b[keep], outcome[keep]
        w = None if w is None else w[keep]
        if a.size == 0:
            raise RatingsInputError(f"{source + ': ' if source else ''}no valid battles to rate")
        used = np.unique(np.concatenate([a, b]))
        if used.size < models.size:
            remap = np.full(models.size, -1, dtype=np.int64)
            remap[used] = np.arange(used.size)
            models, a, b = models[used], remap[a], remap[b]
    return BattleArrays(models, a.astype(np.int32), b.astype(np.int32), outcome.astype(np.int8), w)


def _records_frame(rows: Iterable[Any]) -> pd.DataFrame:
    cols: dict[str, list[Any]] = {"model_a": [], "model_b": [], "winner": [], "weight": []}
    has_weight = False
    for pos, row in enumerate(rows):
        if isinstance(row, Mapping):
            get = row.get
        elif all(hasattr(row, c) for c in REQUIRED_COLUMNS):
            def get(key: str, default: Any = None, _row: Any = row) -> Any:
                return getattr(_row, key, default)
        else:
            raise RatingsInputError(f"row {pos}: expected a dict with model_a, model_b, winner, got {type(row).__name__}")
        for c in REQUIRED_COLUMNS:
            cols[c].append(get(c))
        wv = get("weight")
        has_weight = has_weight or wv is not None
        cols["weight"].append(1.0 if wv is None else wv)
    if not has_weight:
        del cols["weight"]
    return pd.DataFrame(cols, dtype=object)


def _read_jsonl(path: Path) -> pd.DataFrame:
    """Read a JSONL battle file; errors name ``path:line`` (1-based)."""
    cols: dict[str, list[Any]] = {"model_a": [], "model_b": [], "winner": [], "weight": []}
    lines: list[int] = []
    has_weight = False
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RatingsInputError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise RatingsInputError(f"{path}:{lineno}: expected a JSON object")
            for c in REQUIRED_COLUMNS:
                if c not in row:
                    raise RatingsInputError(f"{path}:{lineno}: missing field {c}")
                cols[c].append(row[c])
            wv = row.get("weight")
            has_weight = has_weight or wv is not None
            cols["weight"].append(1.0 if wv is None else wv)
            lines.append(lineno)
    if not has_weight:
        del cols["weight"]
    df = pd.DataFrame(cols, dtype=object)
    df.attrs["lines"] = lines
    return df


def to_arrays(battles: Any, *, drop_invalid: bool = False) -> BattleArrays:
    """Any accepted battle input (except :class:`PairCounts`) as :class:`BattleArrays`, in input order."""
    if isinstance(battles, BattleArrays):
        return battles
    if isinstance(battles, PairCounts):
        raise RatingsInputError("aggregated PairCounts have no battle order; pass the battles themselves")
    if isinstance(battles, pd.DataFrame):
        return arrays_from_frame(battles, drop_invalid=drop_invalid)
    if isinstance(battles, (str, os.PathLike)):
        path = Path(battles)
        suffix = path.suffix.lower()
        if not path.exists():
            raise RatingsInputError(f"{path}: no such file")
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            cols = [c for c in (*REQUIRED_COLUMNS, "weight") if c in pq.read_schema(path).names]
            return arrays_from_frame(pq.read_table(path, columns=cols).to_pandas(), source=str(path),
                                     drop_invalid=drop_invalid)
        if suffix in (".jsonl", ".json", ".ndjson"):
            df = _read_jsonl(path)
            lines = df.attrs["lines"]
            try:
                return arrays_from_frame(df, source=str(path), drop_invalid=drop_invalid)
            except RatingsInputError as exc:
                # translate "path: row N" into "path:LINE" (1-based line in the file)
                msg = str(exc)
                prefix = f"{path}: row "
                if msg.startswith(prefix):
                    pos_str, rest = msg[len(prefix):].split(":", 1)
                    raise RatingsInputError(f"{path}:{lines[int(pos_str)]}:{rest}") from None
                raise
        raise RatingsInputError(f"{path}: unsupported battle file type {suffix!r} (use .parquet or .jsonl)")
    if isinstance(battles, Iterable):
        return arrays_from_frame(_records_frame(battles), drop_invalid=drop_invalid)
    raise RatingsInputError(f"cannot read battles from a {type(battles).__name__}")


def aggregate(battles: Any, *, drop_invalid: bool = False, engine: str = "pyarrow") -> PairCounts:
    """Aggregate any accepted battle input into :class:`PairCounts` (one O(battles) pass).

    Parquet paths are streamed in chunks (see :func:`aggregate_parquet`), everything else is read into
    memory. ``drop_invalid=True`` skips rows whose winner is missing (``None``/NaN) instead of raising.
    """
    if isinstance(battles, PairCounts):
        return battles
    if isinstance(battles, (str, os.PathLike)) and Path(battles).suffix.lower() in (".parquet", ".pq"):
        return aggregate_parquet(battles, engine=engine, drop_invalid=drop_invalid)
    return counts_from_arrays(to_arrays(battles, drop_invalid=drop_invalid))


# --------------------------------------------------------------------------------------------- streaming


def aggregate_parquet(
    path: str | os.PathLike[str],
    *,
    engine: str = "pyarrow",
    batch_size: int = 2_000_000,
    drop_invalid: bool = False,
) -> PairCounts:
    """Aggregate a Parquet battle file of any size without loading it whole.

    ``engine="pyarrow"`` streams record batches (dictionary-encoded string columns are used as-is, so
    memory stays at one batch plus the counts); ``engine="duckdb"`` lets DuckDB run the GROUP BY
    out of core (one thread, lower peak memory). Both validate every row; errors give the 0-based row
    number in the file.
    """
    path = Path(path)
    if not path.exists():
        raise RatingsInputError(f"{path}: no such file")
    if engine == "duckdb":
        return _aggregate_parquet_duckdb(path, drop_invalid)
    if engine != "pyarrow":
        raise RatingsInputError(f"engine must be 'pyarrow' or 'duckdb', got {engine!r}")
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path, read_dictionary=list(REQUIRED_COLUMNS))
    names = pf.schema_arrow.names
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise RatingsInputError(f"{path}: missing column(s) {', '.join(missing)}; have {names}")
    columns = [*REQUIRED_COLUMNS] + (["weight"] if "weight" in names else [])
    global_ids: dict[str, int] = {}
    keys_parts: list[np.ndarray] = []
    n_parts: list[np.ndarray] = []
    w_parts: list[np.ndarray] = []
    offset = 0
    src = str(path)

    def dict_codes(col: Any, name: str) -> tuple[np.ndarray, list[Any]]:
        if not pa.types.is_dictionary(col.type):
            col = pc.dictionary_encode(col)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        idx = col.indices.to_numpy(zero_copy_only=False)
        if col.null_count:
            nulls = col.is_null().to_numpy(zero_copy_only=False)
            if name != "winner" or not drop_invalid:
                pos = offset + int(np.flatnonzero(nulls)[0])
                what = f"{name} is missing" + (" (pass drop_invalid=True to skip)" if name == "winner" else "")
                raise RatingsInputError(f"{_where(src, pos)}: {what}")
            idx = np.where(nulls, -1, idx)
        return idx.astype(np.int64), col.dictionary.to_pylist()

    for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
        ia, da = dict_codes(batch.column(0), "model_a")
        ib, db = dict_codes(batch.column(1), "model_b")
        iw, dw = dict_codes(batch.column(2), "winner")
        for d, name, idx in ((da, "model_a", ia), (db, "model_b", ib)):
            for k, u in enumerate(d):
                if (not isinstance(u, str) or not u.strip()) and (idx == k).any():
                    pos = offset + int(np.flatnonzero(idx == k)[0])
                    raise RatingsInputError(f"{_where(src, pos)}: {name} must be a non-empty model name, got {u!r}")
                if isinstance(u, str) and u not in global_ids:
                    global_ids[u] = len(global_ids)
        map_a = np.array([global_ids.get(u, -1) if isinstance(u, str) else -1 for u in da] or [0], dtype=np.int64)
        map_b = np.array([global_ids.get(u, -1) if isinstance(u, str) else -1 for u in db] or [0], dtype=np.int64)
        wtab = np.empty(len(dw) + 1, dtype=np.int64)
        wtab[-1] = -1
        for k, u in enumerate(dw):
            code = WINNER_CODES.get(u) if isinstance(u, str) else None
            if code is None:
                if (iw == k).any():
                    pos = offset + int(np.flatnonzero(iw == k)[0])
                    allowed = ", ".join(sorted(WINNER_CODES))
                    raise RatingsInputError(f"{_where(src, pos)}: winner {u!r} is not one of: {allowed}")
                code = -1
            wtab[k] = code
        a = map_a[ia]
        b = map_b[ib]
        o = wtab[iw]
        same = a == b
        if same.any():
            pos = offset + int(np.flatnonzero(same)[0])
            raise RatingsInputError(f"{_where(src, pos)}: model_a and model_b are the same")
        wts = None
        if len(columns) == 4:
            wcol = batch.column(3)
            if wcol.null_count:
                pos = offset + int(np.flatnonzero(wcol.is_null().to_numpy(zero_copy_only=False))[0])
                raise RatingsInputError(f"{_where(src, pos)}: weight is missing")
            wts = wcol.to_numpy(zero_copy_only=False).astype(np.float64)
            bad = ~np.isfinite(wts) | (wts < 0)
            if bad.any():
                pos = offset + int(np.flatnonzero(bad)[0])
                raise RatingsInputError(f"{_where(src, pos)}: weight must be finite and >= 0")
        if drop_invalid and (o < 0).any():
            keep = o >= 0
            a, b, o = a[keep], b[keep], o[keep]
            wts = None if wts is None else wts[keep]
        # local aggregation on unordered pairs of global ids
        lo = np.minimum(a, b)
        hi = np.maximum(a, b)
        o = np.where((a > b) & (o < 2), 1 - o, o)
        g = len(global_ids)
        if g * g * 3 <= 30_000_000:
            cell = (lo * g + hi) * 3 + o
            n_cells = np.bincount(cell, minlength=g * g * 3).reshape(-1, 3)
            w_cells = (n_cells.astype(np.float64) if wts is None
                       else np.bincount(cell, wts, g * g * 3).reshape(-1, 3))
            keep = np.flatnonzero(n_cells.sum(axis=1))
            pair_lo, pair_hi = keep // g, keep % g
            n_cells, w_cells = n_cells[keep], w_cells[keep]
        else:
            uniq, inv = np.unique(lo * g + hi, return_inverse=True)
            cell = inv * 3 + o
            n_cells = np.bincount(cell, minlength=uniq.size * 3).reshape(-1, 3)
            w_cells = (n_cells.astype(np.float64) if wts is None
                       else np.bincount(cell, wts, uniq.size * 3).reshape(-1, 3))
            pair_lo, pair_hi = uniq // g, uniq % g
        keys_parts.append(np.stack([pair_lo, pair_hi], axis=1))
        n_parts.append(n_cells)
        w_parts.append(w_cells)
        offset += batch.num_rows
    if not global_ids:
        raise RatingsInputError(f"{path}: no battles to rate")
    names_by_id = np.array(sorted(global_ids, key=global_ids.__getitem__), dtype=object)
    order = np.argsort(names_by_id)  # sorted position -> id
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)  # id -> sorted position
    keys = np.concatenate(keys_parts)
    gi = rank[keys[:, 0]]
    gj = rank[keys[:, 1]]
    i, j = np.minimum(gi, gj), np.maximum(gi, gj)
    n = np.concatenate(n_parts)
    w = np.concatenate(w_parts)
    flip = gi > gj
    n[flip] = n[flip][:, [1, 0, 2]]
    w[flip] = w[flip][:, [1, 0, 2]]
    return _collapse(tuple(names_by_id[order].tolist()), i, j, n, w)


def _aggregate_parquet_duckdb(path: Path, drop_invalid: bool) -> PairCounts:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET threads TO 1")
        names = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise RatingsInputError(f"{path}: missing column(s) {', '.join(missing)}; have {names}")
        wexpr = "weight" if "weight" in names else "1.0"
        allowed = ", ".join(f"'{k}'" for k in WINNER_CODES)
        null_winner = "" if drop_invalid else " OR winner IS NULL"
        bad = con.execute(
            f"""SELECT file_row_number, model_a, model_b, winner, {wexpr} AS w
                FROM read_parquet(?, file_row_number = true)
                WHERE model_a IS NULL OR model_b IS NULL OR trim(model_a) = '' OR trim(model_b) = ''
                   OR model_a = model_b OR (winner IS NOT NULL AND winner NOT IN ({allowed})){null_winner}
                   OR w IS NULL OR NOT isfinite(w) OR w < 0
                ORDER BY file_row_number LIMIT 1""",
            [str(path)],
        ).fetchone()
        if bad is not None:
            pos, ma, mb, win, wv = bad
            if ma is None or mb is None or not str(ma).strip() or not str(mb).strip():
                what = "model_a/model_b must be a non-empty model name"
            elif ma == mb:
                what = f"model_a and model_b are the same ({ma!r})"
            elif win is None:
                what = "winner is missing (pass drop_invalid=True to skip)"
            elif win not in WINNER_CODES:
                what = f"winner {win!r} is not one of: {', '.join(sorted(WINNER_CODES))}"
            else:
                what = f"weight must be finite and >= 0, got {wv!r}"
            raise RatingsInputError(f"{_where(str(path), int(pos))}: {what}")
        rows = con.execute(
            f"""SELECT model_a, model_b, winner, count(*) AS n, sum({wexpr}) AS w
                FROM read_parquet(?) WHERE winner IS NOT NULL GROUP BY ALL""",
            [str(path)],
        ).fetch_df()
    finally:
        con.close()
    if rows.empty:
        raise RatingsInputError(f"{path}: no battles to rate")
    models = np.array(sorted(set(rows["model_a"]) | set(rows["model_b"])), dtype=object)
    a = np.searchsorted(models, rows["model_a"].to_numpy(dtype=object))
    b = np.searchsorted(models, rows["model_b"].to_numpy(dtype=object))
    o = rows["winner"].map(WINNER_CODES).to_numpy(dtype=np.int64)
    o = np.where((a > b) & (o < 2), 1 - o, o)
    n = np.zeros((len(rows), 3), dtype=np.int64)
    w = np.zeros((len(rows), 3))
    n[np.arange(len(rows)), o] = rows["n"].to_numpy(dtype=np.int64)
    w[np.arange(len(rows)), o] = rows["w"].to_numpy(dtype=np.float64)
    return _collapse(tuple(models.tolist()), np.minimum(a, b), np.maximum(a, b), n, w)
