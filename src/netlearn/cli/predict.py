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
    p.add_argument("images", metavar="IMAGE", nargs="+", help="IDX image file(s) or PNG file(s)")
    p.add_argument("--index", metavar="N|START:STOP", default=None,
                   help="for IDX files: one image N, or the range START:STOP (Python slice, 0-based) (default: all)")
    p.add_argument("--labels", metavar="IDX_FILE", default=None,
                   help="IDX label file matching the (single) IDX image file: marks each prediction right or "
                        "wrong and prints the accuracy (default: none)")
    p.add_argument("--invert", action="store_true", help="use 1 - pixel (for dark digits on a light background)")
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


def run(args) -> int:
    from ..data.mnist import DataError, read_idx

    net = load_model(args.model)
    batches = []  # (name, first index or None, X)
    for name in args.images:
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
    right = total = 0
    for name, first, X in batches:
        if X.shape[1] != net.n_in:
            raise UsageError(f"{name} has {X.shape[1]} pixels per image but the model takes {net.n_in} inputs.")
        if args.invert:
            X = 1 - X
        if first is None and X.mean() > 0.5 and not args.invert:
            print(f"note: {name} looks like a dark digit on a light background; MNIST digits are light on dark: "
                  "try --invert", file=sys.stderr)
        out = net.predict_proba(X)
        pred = np.argmax(out, axis=1)
        for i in range(X.shape[0]):
            where = name if first is None else f"{name}[{first + i}]"
            line = f"{where}: {pred[i]}  (output {out[i, pred[i]]:.3f})"
            if labels is not None:
                ok = pred[i] == labels[i]
                right += int(ok)
                total += 1
                line += f"  label {labels[i]}{'' if ok else '  WRONG'}"
            print(line)
    if labels is not None:
        print(f"accuracy {100 * right / total:.2f}% ({right}/{total})")
    return 0
