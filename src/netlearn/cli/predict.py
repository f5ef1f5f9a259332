"""``netlearn predict MODEL IMAGE...``: classify images from IDX files or PNG files with a saved network.

An IMAGE is either an IDX image file like MNIST's ``t10k-images-idx3-ubyte[.gz]``
(all its images, or those chosen with ``--index``) or a PNG.  PNGs are made
to look like MNIST: converted to grayscale (transparent pixels count as
white), resized to 28x28 when they are not (with a note), and scaled to
[0, 1].  MNIST digits are *white on black*; a black-on-white drawing needs
``--invert``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .common import UsageError
from .evaluate import load_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify images (IDX file or PNG) with a saved model",
                       description="Print the class a saved network predicts for each image. IMAGE is an IDX "
                                   "image file (gzipped or not; all images or --index) or a PNG (grayscale "
                                   "28x28, other sizes are resized with a note). MNIST digits are white on black: "
                                   "use --invert for dark digits on a light background.")
    p.add_argument("model", metavar="MODEL", help="model file (netlearn or network2 JSON)")
    p.add_argument("images", metavar="IMAGE", nargs="*", help="IDX image file(s) or PNG file(s), or CSV/.npz rows")
    p.add_argument("--index", metavar="N|START:STOP", default=None,
                   help="for IDX files: one image N, or the range START:STOP (Python slice, 0-based); default all")
    p.add_argument("--labels", metavar="IDX_FILE", default=None,
                   help="IDX label file matching the (single) IDX image file: marks each prediction right or "
                        "wrong and prints the accuracy")
    p.add_argument("--invert", action="store_true", help="use 1 - pixel (for dark digits on a light background)")
    p.add_argument("--data", metavar="FILE", default=None, action="append",
                   help="rows to predict: your own FILE.csv (the model's input columns; a target column is "
                        "optional) or FILE.npz (array X); like giving FILE as an IMAGE%(default).0s")
    p.add_argument("--target", metavar="COLUMN", default=None,
                   help="the CSV's target column, if any, to score the predictions (default: the column the "
                        "model was trained to predict)%(default).0s")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="write [{file, prediction, probabilities}] as JSON (rows also get 'row')%(default).0s")
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


def read_idx_images(path: Path, index: str | None) -> tuple[np.ndarray, int]:
    """The chosen images of an IDX file as float32 rows in [0, 1], and the index of the first one."""
    from ..data.mnist import DataError, read_idx

    try:
        a = read_idx(path)
    except DataError as exc:
        raise UsageError(f"{path} is neither a PNG nor a usable IDX file: {exc}") from None
    if a.ndim == 1:
        raise UsageError(f"{path} holds labels, not images; pass it with --labels.")
    s = parse_index(index, a.shape[0], str(path))
    X = a[s].reshape(s.stop - s.start, -1).astype(np.float32)
    if a.dtype == np.uint8:
        X /= 255
    return X, s.start


def read_png(path: Path, n_in: int) -> np.ndarray:
    """A PNG as one float32 row of ``n_in`` pixels in [0, 1]: grayscale, composited on white, resized if needed."""
    from matplotlib.image import imread

    try:
        img = np.asarray(imread(path), dtype=np.float32)
    except Exception as exc:  # Pillow raises several types for damaged files
        raise UsageError(f"{path} cannot be read as a PNG: {exc}") from None
    if img.dtype.kind != "f" or img.max() > 1:
        img = img / 255
    if img.ndim == 3:
        alpha = img[..., -1] if img.shape[2] in (2, 4) else None
        color = img[..., :3] if img.shape[2] >= 3 else img[..., :1]
        gray = color @ np.array([0.299, 0.587, 0.114], np.float32) if color.shape[2] == 3 else color[..., 0]
        img = gray if alpha is None else gray * alpha + (1 - alpha)
    side = int(round(np.sqrt(n_in)))
    if side * side != n_in:
        raise UsageError(f"the model takes {n_in} inputs, not a square image; PNG input needs a model for "
                         f"square images (e.g. 784 = 28x28).")
    if img.shape != (side, side):
        from scipy.ndimage import zoom

        print(f"note: {path} is {img.shape[1]}x{img.shape[0]} pixels; resized to {side}x{side} (MNIST digits "
              f"are about 20x20, centred in 28x28: crop and centre your digit for best results)", file=sys.stderr)
        img = zoom(img, (side / img.shape[0], side / img.shape[1]), order=1)[:side, :side]
    return np.clip(img, 0, 1).reshape(1, -1)


def predict_rows(net, path: str, target: str | None) -> list[dict]:
    """Predictions for every row of a CSV or .npz file, read with the model's columns and scaling."""
    from .. import metrics
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


def predict_images(args, net, names: list[str]) -> list[dict]:
    from ..data.mnist import DataError, read_idx

    batches = []  # (name, first index or None, X)
    for name in names:
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"no image file at {name}.")
        with open(path, "rb") as f:
            is_png = f.read(8) == PNG_MAGIC
        if is_png:
            if args.index is not None:
                raise UsageError("--index applies to IDX files; a PNG holds one image.")
            batches.append((name, None, read_png(path, net.n_in)))
        else:
            X, first = read_idx_images(path, args.index)
            batches.append((name, first, X))
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
        if args.invert:
            X = 1 - X
        if first is None and X.mean() > 0.5 and not args.invert:
            print(f"note: {name} looks like a dark digit on a light background; MNIST digits are light on dark: "
                  "try --invert", file=sys.stderr)
        found = answers(net, X, name)
        for i, d in enumerate(found):
            if first is not None:
                d["index"] = first + i
                if labels is not None:
                    d["label"] = int(labels[i])
        results += found
    return results
