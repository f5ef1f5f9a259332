"""``netlearn predict MODEL FILE...``: what a saved network answers for images, IDX files or rows of a table.

A FILE is

* an image Pillow reads (PNG, JPEG, GIF, BMP, TIFF, WebP, ...), of any size
  and colour: prepared the way MNIST was made (grey; dark-on-light inverted;
  the paper's level removed; cropped; the longest side scaled to 20 pixels;
  centred by centre of mass in 28x28; see :mod:`netlearn.data.images`), or
  taken as it is with ``--no-preprocess`` (grey, resized to the model's side);
* an IDX image file like MNIST's ``t10k-images-idx3-ubyte[.gz]`` (all its
  images, or those chosen with ``--index``);
* a ``.csv`` or ``.npz`` file of rows (also ``--data FILE``), read with the
  model's columns and scaling.

Classes print as the labels the model was trained with; a regression model
prints its values.  ``--json FILE`` writes ``[{"file", "prediction",
"probabilities"}]``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .common import UsageError
from .evaluate import load_model

GZIP_MAGIC = b"\x1f\x8b"


def register(sub) -> None:
    p = sub.add_parser("predict", help="answers of a saved model for images, IDX files or CSV rows",
                       description="Print the class (or value) a saved network predicts for each FILE: an image "
                                   "(PNG, JPEG, anything Pillow reads; prepared like an MNIST digit unless "
                                   "--no-preprocess), an IDX image file (all images or --index), or a CSV/.npz "
                                   "file of rows.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model file (netlearn or network2 JSON)")
    p.add_argument("images", metavar="FILE", nargs="*",
                   help="image files, IDX image files, or .csv/.npz files of rows%(default).0s")
    p.add_argument("--no-preprocess", action="store_true",
                   help="take images as they are (grey, resized to the model's side), without inverting, "
                        "cleaning, cropping and centring them as MNIST digits")
    p.add_argument("--index", metavar="N|START:STOP", default=None,
                   help="for IDX files: one image N, or the range START:STOP (Python slice, 0-based) "
                        "(default: all)%(default).0s")
    p.add_argument("--labels", metavar="IDX_FILE", default=None,
                   help="IDX label file matching the (single) IDX image file: marks each prediction right or "
                        "wrong and prints the accuracy (default: none)%(default).0s")
    p.add_argument("--invert", action="store_true",
                   help="use 1 - pixel for IDX files and --no-preprocess images (prepared images are inverted "
                        "when they are dark on light)")
    p.add_argument("--data", metavar="FILE", default=None, action="append",
                   help="rows to predict: your own FILE.csv (the model's input columns; a target column is "
                        "optional) or FILE.npz (array X); the same as giving FILE as an argument (default: none)%(default).0s")
    p.add_argument("--target", metavar="COLUMN", default=None,
                   help="the CSV's target column, if any, to score the predictions (default: the column the "
                        "model was trained to predict)%(default).0s")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="write [{file, prediction, probabilities}] as JSON (rows also get 'row') (default: not written)%(default).0s")
    p.set_defaults(func=run)


def parse_index(text: str | None, n: int, name: str) -> slice:
    """``N`` or ``START:STOP`` (Python slice syntax, negative counts from the end) as a slice into ``n`` images."""
    if text is None:
        return slice(0, n)
    try:
        if ":" in text:
            a, b = text.split(":", 1)
            start = int(a) if a.strip() else 0
            stop = int(b) if b.strip() else n
            s = slice(*slice(start, stop).indices(n)[:2])
        else:
            i = int(text)
            if not -n <= i < n:
                raise UsageError(f"--index {text}: {name} has {n} images (0 to {n - 1}).")
            i %= n
            s = slice(i, i + 1)
    except ValueError:
        raise UsageError(f"--index must be a number N or a range START:STOP like 0:10, got {text!r}.") from None
    if s.stop <= s.start:
        raise UsageError(f"--index {text} selects no image of {name} ({n} images).")
    return s


def is_idx(path: Path) -> bool:
    """Does the file start like an IDX file (two zero bytes, a type byte, a dimension count) or a gzip stream?"""
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:2] == GZIP_MAGIC or (len(head) == 4 and head[:2] == b"\0\0" and head[2] in (8, 9, 11, 12, 13, 14))


def read_idx_images(path: Path, index: str | None) -> tuple[np.ndarray, int]:
    """The chosen images of an IDX file as float32 rows in [0, 1], and the index of the first one."""
    from ..data.mnist import _REDOWNLOAD, DataError, read_idx

    try:
        a = read_idx(path)
    except DataError as exc:
        # The user's own file: the advice to delete it and download it again is for the data root's copies.
        raise UsageError(f"{path} is not a usable IDX image file: {str(exc).replace(_REDOWNLOAD, '').strip()}") from None
    if a.ndim == 1:
        raise UsageError(f"{path} holds labels, not images; pass it with --labels.")
    s = parse_index(index, a.shape[0], str(path))
    X = a[s].reshape(s.stop - s.start, -1).astype(np.float32)
    if a.dtype == np.uint8:
        X /= 255
    return X, s.start


def predict_rows(net, path: str, target: str | None) -> list[dict]:
    """Predictions for every row of a CSV or .npz file, read with the model's columns and scaling."""
    from ..data.mnist import DataError
    from ..data.tabular import read_for_model

    try:
        X, y, _ = read_for_model(path, net.preprocessing, net.n_in, target=target, require_target=False)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    results = answers(net, X, path)
    for r, d in enumerate(results):
        d["row"] = r + 1
    if y is not None and net.task == "classification":
        labels = [label_of(net, int(v)) for v in y]
        for d, t in zip(results, labels):
            d["label"] = t
    return results


def label_of(net, index: int):
    """The label the model was trained with for output ``index`` (the index itself for MNIST)."""
    pre = net.preprocessing
    return pre.label(index) if pre is not None else int(index)


def answers(net, X: np.ndarray, name: str) -> list[dict]:
    """One ``{"file", "prediction", "probabilities"}`` per row of ``X``: a class (its label) or the values."""
    from .. import metrics

    if net.task == "regression":
        A = net.predict_proba(X)
        pre = net.preprocessing
        A = pre.inverse_y(A) if pre is not None else A.astype(np.float64)
        return [{"file": name, "prediction": float(a[0]) if a.shape[0] == 1 else [float(v) for v in a],
                 "probabilities": None} for a in A]
    P = metrics.class_probabilities(net, X)
    return [{"file": name, "prediction": label_of(net, int(np.argmax(p))), "probabilities": [float(v) for v in p]}
            for p in P]


def print_answers(results: list[dict]) -> None:
    right = total = 0
    for d in results:
        where = d["file"] + (f" row {d['row']}" if "row" in d else "") + (f"[{d['index']}]" if "index" in d else "")
        p = d["prediction"]
        if d["probabilities"] is None:
            line = f"{where}: {p:.6g}" if not isinstance(p, list) else f"{where}: {' '.join(f'{v:.6g}' for v in p)}"
        else:
            line = f"{where}: {p}  (p {max(d['probabilities']):.3f})"
        if "label" in d:
            ok = d["label"] == p
            right, total = right + ok, total + 1
            line += f"  label {d['label']}{'' if ok else '  WRONG'}"
        print(line)
    if total:
        print(f"accuracy {100 * right / total:.2f}% ({right}/{total})")


def run(args) -> int:
    from ..data.tabular import is_table_file

    net = load_model(args.model)
    names = list(args.images) + list(args.data or [])
    if not names:
        raise UsageError("give the files to predict: images, an IDX file, or rows (--data FILE.csv).")
    rows = [n for n in names if is_table_file(n)]
    others = [n for n in names if not is_table_file(n)]
    results: list[dict] = []
    for name in rows:
        results += predict_rows(net, name, args.target)
    if others:
        results += predict_images(args, net, others)
    if args.json:
        import json

        from ..io import atomic_write_text

        out = [{k: d[k] for k in ("file", "prediction", "probabilities")} | {k: d[k] for k in ("row", "index")
                                                                             if k in d} for d in results]
        try:
            atomic_write_text(args.json, json.dumps(out, indent=1))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--json {args.json}: {exc}") from None
    print_answers(results)
    return 0


def note_size(path: Path, side: int) -> None:
    """With --no-preprocess, say when an image is resized (a digit must fill MNIST's 20x20 box to be read well)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError):
        return  # load_digit reports it
    if (w, h) != (side, side):
        print(f"note: {path} is {w}x{h} pixels; resized to {side}x{side} (MNIST digits are about 20x20, centred "
              f"in 28x28: leave out --no-preprocess to crop and centre the digit)", file=sys.stderr)


def predict_images(args, net, names: list[str]) -> list[dict]:
    from ..data.mnist import DataError, read_idx

    from ..data.images import ImageError, load_digit

    batches = []  # (name, first index or None, X)
    side = int(round(np.sqrt(net.n_in)))
    for name in names:
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"no image file at {name}." if not path.exists() else f"{name} is not a file.")
        if is_idx(path):
            X, first = read_idx_images(path, args.index)
            batches.append((name, first, X))
            continue
        if args.index is not None:
            raise UsageError("--index applies to IDX files; an image file holds one image.")
        if side * side != net.n_in:
            raise UsageError(f"the model takes {net.n_in} inputs, not a square image; images need a model for "
                             f"square images (e.g. 784 = 28x28).")
        if args.no_preprocess:
            note_size(path, side)
        try:
            x = load_digit(path, preprocess=not args.no_preprocess, side=side)
        except ImageError as exc:
            raise UsageError(f"{exc} netlearn predict takes images, IDX image files, and .csv/.npz rows.") from None
        if args.no_preprocess and args.invert:
            x = 1 - x
        batches.append((name, None, x[None, :]))
    labels = None
    if args.labels is not None:
        idx = [b for b in batches if b[1] is not None]
        if len(idx) != 1 or len(batches) != 1:
            raise UsageError("--labels needs exactly one IDX image file.")
        try:
            all_labels = read_idx(args.labels)
        except (DataError, FileNotFoundError) as exc:
            raise UsageError(f"--labels {args.labels}: {exc}") from None
        if all_labels.ndim != 1:
            raise UsageError(f"--labels {args.labels} holds images, not labels.")
        first, n = idx[0][1], idx[0][2].shape[0]
        if first + n > all_labels.shape[0]:
            raise UsageError(f"--labels {args.labels} has {all_labels.shape[0]} labels, fewer than the images.")
        labels = all_labels[first:first + n]
    results = []
    for name, first, X in batches:
        if X.shape[1] != net.n_in:
            raise UsageError(f"{name} has {X.shape[1]} pixels per image but the model takes {net.n_in} inputs.")
        if first is not None and args.invert:
            X = 1 - X
        if first is None and args.no_preprocess and X.mean() > 0.5 and not args.invert:
            print(f"note: {name} looks like a dark digit on a light background; MNIST digits are light on dark: "
                  "try --invert, or leave out --no-preprocess", file=sys.stderr)
        found = answers(net, X, name)
        for i, d in enumerate(found):
            if first is not None:
                d["index"] = first + i
                if labels is not None:
                    d["label"] = int(labels[i])
        results += found
    return results
