"""The user's own data: CSV files with a header, or ``.npz`` files with ``X`` and ``y``.

The path from a file to training data, in four steps that the CLI (``train``,
``evaluate``, ``predict``, and later ``search``) and Python share:

1. :func:`read_table` reads a file into a :class:`Table`: float64 features,
   the raw target column (numbers or strings), the column names.  A CSV is
   read row by row with the standard library's ``csv`` module into blocks of
   float64 rows, and the target a block at a time as numbers or as codes of
   its text labels, so memory stays near the size of the final arrays (never
   a Python list of Python floats or strings).  A bad cell ends the read with one
   :class:`TabularError` naming the line and the column.
2. :func:`infer_task` decides classification or regression: strings, or
   integer values with few distinct values (at most :data:`MAX_CLASSES`, and
   on average at least two examples per class) are classes; anything else is
   a regression target.
3. :func:`split` holds out a validation fraction, seeded and (for classes)
   stratified, so every class keeps its share.
4. :class:`Preprocessing` learns the scaling on the training rows only
   (``standard``: ``(x - mean) / std``; ``minmax``: ``(x - min) / (max - min)``;
   ``none``) for the inputs and, for regression, the targets; and maps class
   labels to ``0..k-1``.  Saved with the model, it lets ``evaluate`` and
   ``predict`` take raw files.

:func:`load_tabular` runs the four steps for training, validation and test
files at once.
"""
from __future__ import annotations

import csv
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .mnist import DataError

#: Column names taken as the target when ``target`` is not given (compared case-insensitively).
TARGET_NAMES = ("label", "target", "y")
#: An integer-valued target with more distinct values than this is a regression target.
MAX_CLASSES = 20
#: Rows parsed into one float64 block before the block is stored (bounds the Python objects alive).
BLOCK_ROWS = 4096
#: Distinct text labels a target column may hold (a classification target has a few).
MAX_TEXT_LABELS = 65_536
TASKS = ("classification", "regression")
SCALES = ("standard", "minmax", "none")
SUFFIXES = (".csv", ".npz")


class TabularError(DataError):
    """A CSV or ``.npz`` file that cannot be used; the message names the line and column when there is one."""


@dataclass
class Table:
    """A file's contents: ``X`` float64 ``(n, d)``, the raw ``y`` (numbers ``(n,)``/``(n, k)`` or strings ``(n,)``,
    ``None`` when the file has no target column), and the names of the feature and target columns."""

    X: np.ndarray
    y: np.ndarray | None
    features: list[str]
    target: str | None
    path: str = ""

    def __len__(self) -> int:
        return self.X.shape[0]


# -- reading -------------------------------------------------------------------------------------------------
def is_table_file(name: str | os.PathLike) -> bool:
    """Does the name end in ``.csv`` or ``.npz`` (the files :func:`read_table` reads)?"""
    return Path(name).suffix.lower() in SUFFIXES


def read_table(path: str | os.PathLike, target: str | None = None, features: Sequence[str] | None = None,
               require_target: bool = True) -> Table:
    """Read a CSV (with a header) or a ``.npz`` (with ``X`` and ``y``) file.

    ``target`` names the target column of a CSV; by default the column named
    ``label``, ``target`` or ``y``, else the last.  ``features`` (the columns a
    saved model was trained on) picks and orders the input columns by name;
    by default every other column.  With ``require_target=False`` a CSV that
    lacks the target column is read as inputs only (``y`` is ``None``), as
    for prediction.  Every problem raises :class:`TabularError`.
    """
    path = Path(path)
    if not path.is_file():
        raise TabularError(f"{path}: no such file." if not path.exists() else f"{path} is not a file.")
    if path.suffix.lower() == ".npz":
        if target is not None and target != "y":
            raise TabularError(f"{path}: a .npz file holds its target in the array 'y'; --target {target} applies "
                               f"to CSV files.")
        return _read_npz(path, features, require_target)
    return _read_csv(path, target, features, require_target)


def _read_csv(path: Path, target: str | None, features: Sequence[str] | None, require_target: bool) -> Table:
    try:
        # newline="" as the csv module asks; utf-8-sig drops a byte-order mark a spreadsheet may write.
        with open(path, newline="", encoding="utf-8-sig", errors="strict") as f:
            return _parse_csv(f, path, target, features, require_target)
    except UnicodeDecodeError as exc:
        raise TabularError(f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8 "
                           f"CSV.") from None
    except csv.Error as exc:
        raise TabularError(f"{path}: not a readable CSV file ({exc}).") from None
    except OSError as exc:
        raise TabularError(f"{path} cannot be read: {exc.strerror or exc}.") from None


def _header(reader, path: Path) -> list[str]:
    for row in reader:
        if row:
            names = [c.strip() for c in row]
            break
    else:
        raise TabularError(f"{path} is empty: a CSV file needs a header line naming its columns.")
    for i, name in enumerate(names):
        if not name:
            raise TabularError(f"{path}, line {reader.line_num}: header cell {i + 1} is empty; name every column.")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise TabularError(f"{path}, line {reader.line_num}: the header names column '{name}' twice; "
                               f"give each column its own name.")
        seen.add(name)
    return names


def _choose_target(names: list[str], target: str | None, path: Path, require: bool) -> int | None:
    if target is not None:
        if target in names:
            return names.index(target)
        if require:
            raise TabularError(f"{path}: no column '{target}' (the target); the header has "
                               f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}.")
        return None
    lower = [n.lower() for n in names]
    for t in TARGET_NAMES:
        if t in lower:
            return lower.index(t)
    return len(names) - 1 if require else None


def _parse_csv(f, path: Path, target: str | None, features: Sequence[str] | None, require_target: bool) -> Table:
    reader = csv.reader(f)
    names = _header(reader, path)
    t = _choose_target(names, target, path, require_target)
    if features is None:
        cols = [i for i in range(len(names)) if i != t]
    else:
        missing = [c for c in features if c not in names]
        if missing:
            raise TabularError(f"{path}: the model's input column(s) {', '.join(missing[:5])} are missing from "
                               f"the header.")
        cols = [names.index(c) for c in features]
    if not cols:
        raise TabularError(f"{path}: the only column is the target '{names[t]}'; a CSV needs at least one input "
                           f"column beside it.")
    if t is not None and t in cols:
        raise TabularError(f"{path}: column '{names[t]}' cannot be both an input and the target.")
    width = len(names)
    blocks: list[np.ndarray] = []
    target = _TargetColumn(path, names[t]) if t is not None else None
    cells: list[list[str]] = []  # the current block's input cells, parsed by NumPy at once
    lines: list[int] = []
    y_cells: list[str] = []

    def flush() -> None:
        blocks.append(_parse_block(cells, lines, path, [names[c] for c in cols]))
        if target is not None:
            target.add(y_cells, lines)
        cells.clear(), lines.clear(), y_cells.clear()

    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip() and width > 1):
            continue  # blank lines (a trailing newline, a spreadsheet's empty rows)
        line = reader.line_num
        if len(row) != width:
            raise TabularError(f"{path}, line {line}: {len(row)} cells, but the header has {width} columns "
                               f"(a ragged row).")
        cells.append([row[c] for c in cols])
        lines.append(line)
        if t is not None:
            cell = row[t].strip()
            if not cell:
                raise TabularError(f"{path}, line {line}, column '{names[t]}': the target is missing.")
            y_cells.append(cell)
        if len(cells) == BLOCK_ROWS:
            flush()
    if cells or not blocks:
        flush()
    X = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    del blocks
    if X.shape[0] == 0:
        raise TabularError(f"{path} has a header but no data rows.")
    y = None if target is None else target.array()
    return Table(X, y, [names[c] for c in cols], None if t is None else names[t], str(path))


def _parse_block(cells: list[list[str]], lines: list[int], path: Path, columns: list[str]) -> np.ndarray:
    """A block of rows of cells as float64; the first bad cell raises, naming its line and column."""
    if not cells:
        return np.empty((0, len(columns)), np.float64)
    try:
        block = np.array(cells, dtype=np.float64)  # NumPy parses the strings in C
    except (ValueError, TypeError, OverflowError):
        block = None
    if block is None or not np.isfinite(block).all():
        # Find the culprit cell by cell, in file order, for the message.
        for row, line in zip(cells, lines):
            for cell, column in zip(row, columns):
                _number(cell, path, line, column)
        # NumPy refused what Python's float() reads (a rare spelling): parse by Python throughout.
        block = np.array([[float(c) for c in row] for row in cells], dtype=np.float64)
    return block


def _number(cell: str, path: Path, line: int, column: str) -> float:
    try:
        v = float(cell)
    except ValueError:
        what = "empty (a missing value)" if not cell.strip() else f"{cell[:40]!r}, not a number"
        raise TabularError(f"{path}, line {line}, column '{column}': {what}. Fill in or remove the row, or encode "
                           f"the column as numbers.") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise TabularError(f"{path}, line {line}, column '{column}': {cell.strip()!r} is not a finite number. "
                           f"Fill in or remove the row.")
    return v


class _TargetColumn:
    """The target cells, stored a block at a time as numbers (float64) or as codes of text labels (int32).

    Text labels are coded through a table of the distinct labels, kept while
    there are at most :data:`MAX_TEXT_LABELS` of them: a column of numbers
    (a regression target) does not grow a table entry per row.
    """

    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name
        self.numbers: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.index: dict[str, int] | None = {}
        self.text = False
        self.rows = 0

    def add(self, cells: list[str], lines: list[int]) -> None:
        if self.index is not None:
            index = self.index
            self.codes.append(np.fromiter((index.setdefault(c, len(index)) for c in cells), np.int32, len(cells)))
            if len(index) > MAX_TEXT_LABELS:
                if self.text:
                    raise TabularError(f"{self.path}, line {lines[-1]}, column '{self.name}': more than "
                                       f"{MAX_TEXT_LABELS} distinct text labels; a target is numbers or a few "
                                       f"classes.")
                self.index, self.codes = None, []
        if not self.text:
            values = np.empty(len(cells), np.float64)
            for i, c in enumerate(cells):
                try:
                    values[i] = float(c)
                except ValueError:
                    if self.index is None:
                        raise TabularError(f"{self.path}, line {lines[i]}, column '{self.name}': {c[:40]!r} is "
                                           f"text, but the rows above hold more than {MAX_TEXT_LABELS} distinct "
                                           f"numbers.") from None
                    self.text, self.numbers = True, []
                    break
                if not np.isfinite(values[i]):
                    raise TabularError(f"{self.path}, line {lines[i]}, column '{self.name}': target {c!r} is not a "
                                       f"finite number.")
            else:
                self.numbers.append(values)
        self.rows += len(cells)

    def array(self) -> np.ndarray:
        """Numbers when every cell is a finite number, else the text labels as strings."""
        if not self.text:
            return np.concatenate(self.numbers) if self.numbers else np.empty(0)
        labels = np.array(list(self.index), dtype=str)
        return labels[np.concatenate(self.codes)]


def _npz_member_size(zf: zipfile.ZipFile, member: str, path: Path) -> tuple[tuple, np.dtype]:
    """Shape and dtype from the ``.npy`` header, read before the array (a compressed file may expand hugely)."""
    with zf.open(member) as f:
        try:
            version = np.lib.format.read_magic(f)
            shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(f))
        except ValueError as exc:
            raise TabularError(f"{path}: the array {member[:-4]!r} has a damaged header ({exc}).") from None
    return shape, dtype


def _available_bytes() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without sysconf
        return 1 << 40


def _read_npz(path: Path, features: Sequence[str] | None, require_target: bool) -> Table:
    try:
        with zipfile.ZipFile(path) as zf:
            members = set(zf.namelist())
            if "X.npy" not in members or (require_target and "y.npy" not in members):
                raise TabularError(f"{path}: a .npz data file needs the arrays 'X' (inputs) and 'y' (targets); it "
                                   f"has {sorted(m[:-4] for m in members if m.endswith('.npy'))}. Write it with "
                                   f"numpy.savez(path, X=X, y=y).")
            total = 0
            for m in ("X.npy", "y.npy"):
                if m in members:
                    shape, dtype = _npz_member_size(zf, m, path)
                    if dtype.hasobject:
                        raise TabularError(f"{path}: the array {m[:-4]!r} holds Python objects, which netlearn "
                                           f"does not unpickle; save numbers or strings.")
                    total += int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if total > _available_bytes() // 2:
                raise TabularError(f"{path}: its arrays would take {total / 2**30:.1f} GiB, more than half this "
                                   f"machine's memory.")
        with np.load(path, allow_pickle=False) as z:
            X = z["X"]
            y = z["y"] if "y.npy" in members else None
    except TabularError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error) as exc:
        raise TabularError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}).") from None
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise TabularError(f"{path}: 'X' must be a non-empty 2-D array (examples, features); it has shape {X.shape}.")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TabularError(f"{path}: 'X' must hold numbers; it holds {X.dtype}.")
    X = X.astype(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise TabularError(f"{path}: X[{r}, {c}] (row {r}, column {c}) is {X[r, c]}, not a finite number.")
    names = [f"x{i}" for i in range(X.shape[1])]
    if features is not None:
        if len(features) != X.shape[1]:
            raise TabularError(f"{path}: 'X' has {X.shape[1]} columns but the model takes {len(features)} inputs.")
        names = list(features)
    if y is not None:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]  # a column of targets is one target
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise TabularError(f"{path}: 'y' must have one entry (or row) per row of 'X' ({X.shape[0]}); it has "
                               f"shape {y.shape}.")
        if y.dtype.kind in "US":
            if y.ndim != 1:
                raise TabularError(f"{path}: string labels 'y' must be 1-D; they have shape {y.shape}.")
            y = y.astype(str)
        elif np.issubdtype(y.dtype, np.number) or y.dtype == bool:
            y = y.astype(np.float64)
            bad = ~np.isfinite(y)
            if bad.any():
                r = int(np.argwhere(bad)[0][0])
                raise TabularError(f"{path}: y[{r}] (row {r}) is not a finite number.")
        else:
            raise TabularError(f"{path}: 'y' must hold numbers or strings; it holds {y.dtype}.")
    return Table(X, y, names, None if y is None else "y", str(path))


# -- the task, the split, the scaling ---------------------------------------------------------------------------
def infer_task(y: np.ndarray) -> str:
    """``"classification"`` for strings, or integers with few distinct values; else ``"regression"``."""
    if y.dtype.kind in "US":
        return "classification"
    if y.ndim == 2 and y.shape[1] > 1:
        return "regression"
    v = y.reshape(-1)
    if not np.all(v == np.round(v)):
        return "regression"
    k = np.unique(v).shape[0]
    return "classification" if k <= MAX_CLASSES and k <= max(2, v.shape[0] // 2) else "regression"


def split(n: int, fraction: float, seed: Any = None, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(kept, held_out)``: ``fraction`` of the rows held out, seeded; stratified by ``labels``.

    With labels, each class gives ``round(fraction * its count)`` rows (at least
    one when it has two or more), so the validation set has the classes in
    the training set's proportions.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"The validation fraction must be in (0, 1). Got {fraction!r} instead.")
    g = np.random.default_rng(seed)
    if labels is None:
        perm = g.permutation(n)
        k = min(max(1, int(round(fraction * n))), n - 1)
        held = perm[:k]
    else:
        held_parts = []
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            g.shuffle(idx)
            k = int(round(fraction * idx.shape[0]))
            if idx.shape[0] >= 2:
                k = min(max(k, 1), idx.shape[0] - 1)
            held_parts.append(idx[:k])
        held = np.concatenate(held_parts)
    mask = np.zeros(n, bool)
    mask[held] = True
    if mask.all() or not mask.any():
        raise ValueError(f"A validation fraction of {fraction} of {n} rows leaves no rows on one side.")
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _fit_scale(A: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(shift, scale)`` with ``(A - shift) / scale`` standardized (or in [0, 1]); constant columns keep scale 1."""
    if kind == "none":
        return np.zeros(A.shape[1]), np.ones(A.shape[1])
    if kind == "standard":
        shift, scale = A.mean(axis=0), A.std(axis=0)
    elif kind == "minmax":
        shift = A.min(axis=0)
        scale = A.max(axis=0) - shift
    else:
        raise ValueError(f"The 'scale' parameter must be one of {list(SCALES)}. Got {kind!r} instead.")
    scale = np.where(scale > 0, scale, 1.0)
    return shift, scale


@dataclass
class Preprocessing:
    """How raw rows become a network's inputs and targets, and outputs become answers.

    ``x_shift``/``x_scale`` map the inputs (``(x - shift) / scale``); for
    regression ``y_shift``/``y_scale`` map the targets the same way and
    :meth:`inverse_y` maps outputs back; for classification ``classes`` lists
    the original labels in the order of the output neurons.
    """

    task: str
    scale: str = "none"
    features: list[str] = field(default_factory=list)
    target: str | None = None
    x_shift: np.ndarray | None = None
    x_scale: np.ndarray | None = None
    y_shift: np.ndarray | None = None
    y_scale: np.ndarray | None = None
    classes: list | None = None

    @classmethod
    def fit(cls, table: Table, task: str | None = None, scale: str = "standard") -> "Preprocessing":
        """Learn the scaling (and the label mapping) from the training rows of ``table``."""
        if table.y is None:
            raise TabularError(f"{table.path}: no target column to learn from.")
        if scale not in SCALES:
            raise ValueError(f"The 'scale' parameter must be one of {list(SCALES)}. Got {scale!r} instead.")
        task = infer_task(table.y) if task is None else task
        if task not in TASKS:
            raise ValueError(f"The 'task' parameter must be one of {list(TASKS)}. Got {task!r} instead.")
        x_shift, x_scale = _fit_scale(table.X, scale)
        pre = cls(task, scale, list(table.features), table.target, x_shift, x_scale)
        if task == "classification":
            y = table.y
            if y.dtype.kind not in "US":
                if y.ndim != 1 or not np.all(y == np.round(y)):
                    raise TabularError(f"{table.path}: classification needs one label per row (integers or "
                                       f"strings); column '{table.target}' holds non-integer numbers. Use "
                                       f"--task regression.")
                values = np.unique(y)
                pre.classes = [int(v) for v in values]
            else:
                pre.classes = sorted(set(y.tolist()))
            if len(pre.classes) < 2:
                raise TabularError(f"{table.path}: column '{table.target}' has a single class "
                                   f"({pre.classes[0]!r}); classification needs at least two.")
        else:
            if table.y.dtype.kind in "US":
                raise TabularError(f"{table.path}: column '{table.target}' holds text, not numbers; a regression "
                                   f"target must be numeric (or use --task classification).")
            pre.y_shift, pre.y_scale = _fit_scale(_column(table.y), scale)
        return pre

    @property
    def n_outputs(self) -> int:
        if self.task == "classification":
            return len(self.classes or ())
        return 1 if self.y_shift is None else self.y_shift.shape[0]

    def transform_X(self, X: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        if self.x_shift is None:
            return np.asarray(X, dtype=dtype)
        return ((X - self.x_shift) / self.x_scale).astype(dtype)

    def transform_y(self, y: np.ndarray, path: str = "", dtype: Any = np.float32) -> np.ndarray:
        """Class indices ``(n,)`` for classification, scaled targets ``(n, k)`` for regression."""
        if self.task == "classification":
            index = {c: i for i, c in enumerate(self.classes)}
            values = y.tolist() if y.dtype.kind in "US" else [int(v) if v == int(v) else v for v in y.tolist()]
            out = np.empty(len(values), np.intp)
            for r, v in enumerate(values):
                i = index.get(v)
                if i is None:
                    raise TabularError(f"{path}, data row {r + 1}: label {v!r} is not one of the model's classes "
                                       f"({', '.join(map(str, self.classes[:10]))}).")
                out[r] = i
            return out
        if y.dtype.kind in "US":
            raise TabularError(f"{path}: the target column holds text; this model predicts numbers.")
        Y = _column(y)
        if Y.shape[1] != self.n_outputs:
            raise TabularError(f"{path}: {Y.shape[1]} target columns; the model predicts {self.n_outputs}.")
        return ((Y - self.y_shift) / self.y_scale).astype(dtype)

    def inverse_y(self, Y: np.ndarray) -> np.ndarray:
        """Network outputs (scaled) back in the target's units."""
        if self.y_shift is None:
            return np.asarray(Y, np.float64)
        return np.asarray(Y, np.float64) * self.y_scale + self.y_shift

    def label(self, index: int):
        """The original label of output neuron ``index`` (the index itself without a mapping)."""
        return self.classes[index] if self.classes is not None and index < len(self.classes) else int(index)

    # -- saving with the model (netlearn.io stores this dict under "preprocessing") --
    def to_dict(self) -> dict:
        d: dict[str, Any] = {"task": self.task, "scale": self.scale, "features": list(self.features),
                             "target": self.target}
        for k in ("x_shift", "x_scale", "y_shift", "y_scale"):
            v = getattr(self, k)
            if v is not None:
                d[k] = [float(x) for x in v]
        if self.classes is not None:
            d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        """The inverse of :meth:`to_dict`; ValueError for a malformed entry."""
        if not isinstance(d, dict) or d.get("task") not in TASKS:
            raise ValueError(f"'preprocessing' needs a 'task' of {list(TASKS)}")
        arrays = {}
        for k in ("x_shift", "x_scale", "y_shift", "y_scale"):
            if d.get(k) is not None:
                a = np.asarray(d[k], dtype=np.float64)
                if a.ndim != 1 or not np.all(np.isfinite(a)) or (k.endswith("scale") and np.any(a <= 0)):
                    raise ValueError(f"'preprocessing' has a malformed {k!r}")
                arrays[k] = a
        classes = d.get("classes")
        if classes is not None and (not isinstance(classes, list) or
                                    not all(isinstance(c, (int, str)) and not isinstance(c, bool) for c in classes)):
            raise ValueError("'preprocessing' has malformed 'classes' (a list of integers or strings)")
        features = d.get("features", [])
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise ValueError("'preprocessing' has malformed 'features'")
        return cls(d["task"], str(d.get("scale", "none")), features, d.get("target"), classes=classes, **arrays)

    def check_network(self, n_in: int, n_out: int) -> None:
        """ValueError when the statistics do not fit a network of ``n_in`` inputs and ``n_out`` outputs."""
        for k, n, what in (("x_shift", n_in, "inputs"), ("x_scale", n_in, "inputs"), ("y_shift", n_out, "outputs"),
                           ("y_scale", n_out, "outputs")):
            v = getattr(self, k)
            if v is not None and v.shape[0] != n:
                raise ValueError(f"'preprocessing' {k} has {v.shape[0]} entries; the network has {n} {what}")
        if self.features and len(self.features) != n_in:
            raise ValueError(f"'preprocessing' names {len(self.features)} input columns; the network takes {n_in}")
        if self.classes is not None and len(self.classes) != n_out:
            raise ValueError(f"'preprocessing' names {len(self.classes)} classes; the network has {n_out} outputs")


def _column(y: np.ndarray) -> np.ndarray:
    return y[:, None] if y.ndim == 1 else y


# -- everything at once -------------------------------------------------------------------------------------------
@dataclass
class TabularData:
    """Scaled, mapped ``(X, y)`` pairs for training, validation and test (``None`` when absent)."""

    training: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray] | None
    test: tuple[np.ndarray, np.ndarray] | None
    preprocessing: Preprocessing

    @property
    def n_inputs(self) -> int:
        return self.training[0].shape[1]

    @property
    def n_outputs(self) -> int:
        return self.preprocessing.n_outputs

    def sizes(self, hidden: Sequence[int]) -> list[int]:
        """Layer sizes with the given hidden layers: the data fixes the first and the last."""
        return [self.n_inputs, *hidden, self.n_outputs]


def prepare(table: Table, pre: Preprocessing, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of ``table`` as the network sees them (scaled inputs; class indices or scaled targets)."""
    if table.y is None:
        raise TabularError(f"{table.path}: no target column '{pre.target}'.")
    return pre.transform_X(table.X, dtype), pre.transform_y(table.y, table.path, dtype)


def load_tabular(path: str | os.PathLike, target: str | None = None, task: str | None = None,
                 scale: str = "standard", validation: str | os.PathLike | None = None,
                 validation_split: float | None = 0.2, test: str | os.PathLike | None = None,
                 seed: Any = None, dtype: Any = np.float32) -> TabularData:
    """Read, split and scale the user's data for training (the ``--data FILE`` path of the CLI).

    ``validation`` is a file with the same columns; without one,
    ``validation_split`` (a fraction in (0, 1), or ``None``/``0`` for none) of
    the rows of ``path`` are held out, seeded by ``seed`` and stratified for
    classification.  ``test`` is an optional file scored the same way.  The
    scaling and label mapping are learned on the training rows alone.
    """
    table = read_table(path, target)
    if task is not None and task not in TASKS:
        raise ValueError(f"The 'task' parameter must be one of {list(TASKS)}. Got {task!r} instead.")
    task = infer_task(table.y) if task is None else task
    held = None
    if validation is not None:
        held = read_table(validation, None if is_npz(validation) else table.target,
                          features=None if is_npz(validation) else table.features)
    elif validation_split:
        labels = table.y if task == "classification" else None
        try:
            keep, out = split(len(table), validation_split, seed, labels)
        except ValueError as exc:
            raise TabularError(f"{table.path}: {exc}") from None
        held = Table(table.X[out], table.y[out], table.features, table.target, f"{table.path} (validation rows)")
        table = Table(table.X[keep], table.y[keep], table.features, table.target, table.path)
    pre = Preprocessing.fit(table, task, scale)
    training = prepare(table, pre, dtype)
    validation_pair = prepare(_same_columns(held, pre), pre, dtype) if held is not None else None
    test_pair = None
    if test is not None:
        t = read_table(test, None if is_npz(test) else table.target, features=None if is_npz(test) else table.features)
        test_pair = prepare(_same_columns(t, pre), pre, dtype)
    return TabularData(training, validation_pair, test_pair, pre)


def is_npz(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ".npz"


def _same_columns(table: Table, pre: Preprocessing) -> Table:
    if table.X.shape[1] != len(pre.features):
        raise TabularError(f"{table.path}: {table.X.shape[1]} input columns; the training file has "
                           f"{len(pre.features)}.")
    return table


def read_for_model(path: str | os.PathLike, pre: Preprocessing | None, n_in: int, target: str | None = None,
                   require_target: bool = True, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray | None, Table]:
    """A file read the way a saved model was trained: its columns, scaling and labels.

    Returns ``(X, y, table)``; ``y`` is ``None`` when the file has no target
    and ``require_target`` is False (prediction).  A model saved without
    preprocessing takes every column but the target as inputs, unscaled.
    """
    if pre is not None and pre.features and not is_npz(path):
        table = read_table(path, target or pre.target, features=pre.features, require_target=require_target)
    else:
        table = read_table(path, target, require_target=require_target)
    if table.X.shape[1] != n_in:
        raise TabularError(f"{path}: {table.X.shape[1]} input columns, but the model takes {n_in} inputs.")
    X = pre.transform_X(table.X, dtype) if pre is not None else table.X.astype(dtype)
    y = None
    if table.y is not None:
        if pre is not None:
            y = pre.transform_y(table.y, str(path), dtype)
        elif table.y.dtype.kind in "US":
            raise TabularError(f"{path}: text labels, but the model was saved without a label mapping.")
        else:
            y = table.y.astype(np.intp) if infer_task(table.y) == "classification" else _column(table.y).astype(dtype)
    return X, y, table
