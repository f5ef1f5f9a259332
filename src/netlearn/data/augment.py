"""Expanded training data: shifted, rotated, elastically distorted and noisy copies of the images.

Chapter 3 of the book ends by enlarging MNIST's 50,000 training images to
250,000 with one-pixel shifts (its ``expand_mnist.py``), and chapter 6 cites
Simard, Steinkraus and Platt (2003), "Best Practices for Convolutional
Neural Networks Applied to Visual Document Analysis", whose *elastic
distortions* beat every affine one.  This module gives both, plus small
rotations and additive Gaussian noise, in two ways:

* a **fixed expansion**, done once before training: :func:`expand`
  (``netlearn train --expand shifts,rotations,elastic``);
* **fresh distortions every epoch**: the training callback :class:`Augment`
  (``netlearn train --augment rotations,elastic,noise``), which draws a new
  distortion of every original image at the start of each epoch.

Images are rows of ``X`` (float32 ``(n, rows*cols)``, square images unless
``shape`` is given); labels are never changed, only copied along.  Every
random draw comes from ``seed``, so the same seed gives the same images.

The geometric distortions are one resampling each: an output pixel ``(r, c)``
takes the input's value at the source point ``(r, c) + d(r, c)``, read by
bilinear interpolation (:func:`scipy.ndimage.map_coordinates`, order 1,
black beyond the edges).  For a rotation by ``theta`` about the centre,
``d`` is the rotation of the pixel grid; for an elastic distortion ``d`` is a
random field ``alpha * G_sigma * U(-1, 1)``: uniform noise per pixel and
direction, smoothed by a Gaussian of width ``sigma`` (which makes it locally
coherent, like the wobble of a pen) and scaled by ``alpha`` (pixels).
Simard et al. use ``sigma = 4`` and ``alpha = 34`` for MNIST.  Rotation and
elastic fields are added before resampling, so combining them blurs no more
than either alone.  Batches are stacked into a 3-D array and resampled by one
``map_coordinates`` call per chunk, which keeps 50,000 images to seconds.

Memory: an expansion holds every copy (``shifts,rotations,elastic`` on
50,000 images is 350,000 x 784 float32, about 1.1 GB); :class:`Augment`
keeps one copy of the originals beside the training array.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

from ..backend import rng as make_rng
from ..callbacks import Callback, TrainingState
from ..validation import check_int

#: The distortions :func:`expand` knows.  :class:`Augment` draws all but ``shifts`` afresh each epoch.
KINDS = ("shifts", "rotations", "elastic", "noise")

#: Defaults for the strengths (also the CLI's): rotations up to +-10 degrees; Simard et al.'s
#: elastic alpha = 34 px and sigma = 4 px; noise of standard deviation 0.1 (pixels are in [0, 1]).
ROTATE_DEGREES = 10.0
ELASTIC_ALPHA = 34.0
ELASTIC_SIGMA = 4.0
NOISE_SIGMA = 0.1

_CHUNK = 4096  # images resampled per map_coordinates call (bounds the coordinate arrays to ~40 MB)


def image_shape(n_features: int, shape: Sequence[int] | None = None) -> tuple[int, int]:
    """``(rows, cols)`` of the images in rows of ``n_features`` pixels: ``shape``, else the square one."""
    if shape is not None:
        rows, cols = (int(s) for s in shape)
        if rows * cols != n_features:
            raise ValueError(f"The 'shape' parameter {tuple(shape)} holds {rows * cols} pixels but the images have "
                             f"{n_features}.")
        return rows, cols
    side = int(round(n_features ** 0.5))
    if side * side != n_features:
        raise ValueError(f"Images of {n_features} pixels are not square; pass shape=(rows, cols).")
    return side, side


def _check_X(X: np.ndarray, name: str = "X") -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, pixels). Got shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"{name} must hold float pixels in [0, 1]. Got dtype {X.dtype}.")
    return X.astype(np.float32, copy=False)


def _check_strength(name: str, value: float, allow_zero: bool = True) -> float:
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        accepted = "a number >= 0" if allow_zero else "a positive number"
        raise ValueError(f"The '{name}' parameter must be {accepted}. Got {value!r} instead.")
    return v


# --------------------------------------------------------------------------- shifts (the book's expansion)

def shift(X: np.ndarray, dy: int, dx: int, shape: Sequence[int] | None = None) -> np.ndarray:
    """Every image moved ``dy`` pixels down and ``dx`` right (negative: up / left); the vacated edge is black.

    Whole-pixel shifts need no interpolation, so this is exact (the book's
    ``expand_mnist.py`` does the same with ``np.roll`` and a zeroed edge).
    """
    X = _check_X(X)
    rows, cols = image_shape(X.shape[1], shape)
    dy, dx = int(dy), int(dx)
    src = X.reshape(-1, rows, cols)
    out = np.zeros_like(src)
    if abs(dy) < rows and abs(dx) < cols:
        out[:, max(dy, 0):rows + min(dy, 0), max(dx, 0):cols + min(dx, 0)] = \
            src[:, max(-dy, 0):rows + min(-dy, 0), max(-dx, 0):cols + min(-dx, 0)]
    return out.reshape(X.shape)


def shifts(X: np.ndarray, y: np.ndarray, pixels: int = 1,
           shape: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The book's expansion: the originals, then each image shifted up, down, left and right by ``pixels``.

    50,000 images become 250,000, in five blocks of ``n`` (original, up, down,
    left, right); ``y`` is repeated to match.
    """
    X = _check_X(X)
    if int(pixels) < 1:
        raise ValueError(f"The 'pixels' parameter must be a whole number >= 1. Got {pixels!r} instead.")
    p = int(pixels)
    blocks = [X] + [shift(X, dy, dx, shape) for dy, dx in ((-p, 0), (p, 0), (0, -p), (0, p))]
    return np.concatenate(blocks), np.concatenate([np.asarray(y)] * 5)


# --------------------------------------------------------------------------- rotations and elastic distortions

def distort(X: np.ndarray, *, rotate_degrees: float = 0.0, elastic_alpha: float = 0.0,
            elastic_sigma: float = ELASTIC_SIGMA, noise_sigma: float = 0.0,
            seed: int | np.random.Generator | None = None, shape: Sequence[int] | None = None,
            out: np.ndarray | None = None) -> np.ndarray:
    """One random distortion of every image: rotation, elastic field and noise, each where its strength > 0.

    ``rotate_degrees``: each image is turned about its centre by an angle
    drawn uniformly from ``[-rotate_degrees, rotate_degrees]``.
    ``elastic_alpha`` / ``elastic_sigma``: Simard et al.'s displacement field
    (scale in pixels / Gaussian smoothing width in pixels); ``alpha = 0``
    turns it off.  ``noise_sigma``: standard deviation of Gaussian noise added
    to each pixel, the result clipped to [0, 1].

    Returns float32 of ``X``'s shape, or writes into ``out`` (which may not be
    ``X`` itself) and returns it.  The same ``seed`` gives the same output.
    """
    X = _check_X(X)
    rotate_degrees = _check_strength("rotate_degrees", rotate_degrees)
    elastic_alpha = _check_strength("elastic_alpha", elastic_alpha)
    elastic_sigma = _check_strength("elastic_sigma", elastic_sigma, allow_zero=False)
    noise_sigma = _check_strength("noise_sigma", noise_sigma)
    if out is None:
        out = np.empty(X.shape, np.float32)
    elif (out.shape != X.shape or out.dtype != np.float32 or not out.flags.c_contiguous
          or np.shares_memory(out, X)):
        raise ValueError("The 'out' parameter must be a C-contiguous float32 array of X's shape that does not "
                         "overlap X.")
    rng = make_rng(seed)
    n = X.shape[0]
    rows, cols = image_shape(X.shape[1], shape)
    angles = np.deg2rad(rng.uniform(-rotate_degrees, rotate_degrees, n)) if rotate_degrees else None
    r = np.arange(rows, dtype=np.float32)[None, :, None] - np.float32((rows - 1) / 2)
    c = np.arange(cols, dtype=np.float32)[None, None, :] - np.float32((cols - 1) / 2)
    for s in range(0, n, _CHUNK):
        e = min(s + _CHUNK, n)
        m = e - s
        src = X[s:e].reshape(m, rows, cols)
        if angles is None and not elastic_alpha:
            warped = src
        else:
            if angles is not None:
                cos = np.cos(angles[s:e]).astype(np.float32)[:, None, None]
                sin = np.sin(angles[s:e]).astype(np.float32)[:, None, None]
                rr, cc = cos * r - sin * c, sin * r + cos * c
            else:
                rr, cc = np.broadcast_to(r, (m, rows, cols)), np.broadcast_to(c, (m, rows, cols))
            # Resample from a copy padded with one black pixel all round, source points clipped into the
            # padding: bilinear interpolation then fades to black across the edge (scipy's "grid-constant"
            # behaviour, which keeps a border pixel displaced by a hair from turning black) at the price
            # of the cheaper "nearest" mode.
            padded = np.zeros((m, rows + 2, cols + 2), np.float32)
            padded[:, 1:-1, 1:-1] = src
            coords = np.empty((3, m, rows, cols), np.float32)
            coords[0] = np.arange(m, dtype=np.float32)[:, None, None]
            coords[1] = rr + np.float32((rows - 1) / 2 + 1)
            coords[2] = cc + np.float32((cols - 1) / 2 + 1)
            if elastic_alpha:
                field = rng.random((2, m, rows, cols), dtype=np.float32)   # U(0, 1) -> U(-1, 1) below
                field *= 2.0
                field -= 1.0
                field = ndimage.gaussian_filter(field, sigma=(0, 0, elastic_sigma, elastic_sigma), mode="constant",
                                                truncate=3.0)
                coords[1:] += np.float32(elastic_alpha) * field
            np.clip(coords[1], 0, rows + 1, out=coords[1])
            np.clip(coords[2], 0, cols + 1, out=coords[2])
            # Axis 0 (which image) gets whole-number coordinates, so order-1 interpolation never mixes images.
            warped = ndimage.map_coordinates(padded, coords, order=1, mode="nearest", output=np.float32)
        dst = out[s:e].reshape(m, rows, cols)
        dst[...] = warped
        if noise_sigma:
            dst += np.float32(noise_sigma) * rng.standard_normal(dst.shape, dtype=np.float32)
        np.clip(dst, 0.0, 1.0, out=dst)
    return out


def rotate(X: np.ndarray, max_degrees: float = ROTATE_DEGREES, seed: int | np.random.Generator | None = None,
           shape: Sequence[int] | None = None) -> np.ndarray:
    """Each image rotated by a random angle in ``[-max_degrees, max_degrees]`` (bilinear, black corners)."""
    return distort(X, rotate_degrees=max_degrees, seed=seed, shape=shape)


def elastic(X: np.ndarray, alpha: float = ELASTIC_ALPHA, sigma: float = ELASTIC_SIGMA,
            seed: int | np.random.Generator | None = None, shape: Sequence[int] | None = None) -> np.ndarray:
    """Simard et al.'s elastic distortion of each image: displacement ``alpha * G_sigma * U(-1, 1)``."""
    return distort(X, elastic_alpha=alpha, elastic_sigma=sigma, seed=seed, shape=shape)


def add_noise(X: np.ndarray, sigma: float = NOISE_SIGMA, seed: int | np.random.Generator | None = None) -> np.ndarray:
    """``X`` plus Gaussian noise of standard deviation ``sigma``, clipped to [0, 1] (any row length)."""
    X = _check_X(X)
    return distort(X, noise_sigma=sigma, seed=seed, shape=(1, X.shape[1]))


# --------------------------------------------------------------------------- fixed expansion

def parse_kinds(kinds: str | Iterable[str], allowed: Sequence[str] = KINDS, what: str = "kinds") -> tuple[str, ...]:
    """Validate ``kinds`` ("shifts,elastic" or a list) against ``allowed``; duplicates dropped, order kept."""
    items = [k.strip() for k in kinds.split(",")] if isinstance(kinds, str) else [str(k).strip() for k in kinds]
    items = [k for k in items if k]
    unknown = [k for k in items if k not in allowed]
    if unknown or not items:
        raise ValueError(f"The '{what}' parameter must name one or more of {', '.join(allowed)}. "
                         f"Got {', '.join(unknown) if unknown else 'nothing'} instead.")
    return tuple(dict.fromkeys(items))


def expand(X: np.ndarray, y: np.ndarray, kinds: str | Iterable[str] = ("shifts",),
           seed: int | np.random.Generator | None = None, *, copies: int = 1, shift_pixels: int = 1,
           rotate_degrees: float = ROTATE_DEGREES, elastic_alpha: float = ELASTIC_ALPHA,
           elastic_sigma: float = ELASTIC_SIGMA, noise_sigma: float = NOISE_SIGMA,
           shape: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A larger training set: the originals followed by distorted copies, with the labels repeated.

    ``kinds`` (any of :data:`KINDS`) adds, per original image:

    * ``shifts``: 4 copies moved ``shift_pixels`` up, down, left, right (the book's 50,000 -> 250,000);
    * ``rotations``: ``copies`` copies, each rotated by a random angle in ``[-rotate_degrees, rotate_degrees]``;
    * ``elastic``: ``copies`` elastically distorted copies (``elastic_alpha``, ``elastic_sigma``);
    * ``noise``: ``copies`` copies with Gaussian noise of standard deviation ``noise_sigma``.

    So ``kinds="shifts,rotations,elastic"`` turns 50,000 images into
    350,000.  Every copy is made from the originals, never from another copy.
    Blocks follow the order of :data:`KINDS`; training shuffles anyway.
    Returns float32 ``X`` and ``y`` of matching length; same ``seed``, same result.
    """
    X = _check_X(X)
    y = np.asarray(y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} images but y has {y.shape[0]} labels; they must be equally many.")
    check_int("copies", copies)
    chosen = parse_kinds(kinds)
    rows_cols = image_shape(X.shape[1], shape) if {"shifts", "rotations", "elastic"} & set(chosen) else None
    if "shifts" in chosen and (isinstance(shift_pixels, bool) or int(shift_pixels) != shift_pixels
                               or shift_pixels < 1):
        raise ValueError(f"The 'shift_pixels' parameter must be a whole number >= 1. Got {shift_pixels!r} instead.")
    strengths = {"rotations": dict(rotate_degrees=_check_strength("rotate_degrees", rotate_degrees, False)),
                 "elastic": dict(elastic_alpha=_check_strength("elastic_alpha", elastic_alpha, False),
                                 elastic_sigma=_check_strength("elastic_sigma", elastic_sigma, False)),
                 "noise": dict(noise_sigma=_check_strength("noise_sigma", noise_sigma, False))}
    n_blocks = 1 + sum(4 if k == "shifts" else int(copies) for k in chosen)
    n = X.shape[0]
    out = np.empty((n_blocks * n, X.shape[1]), np.float32)  # filled block by block: no concatenation copies
    blocks = iter(out[i * n:(i + 1) * n] for i in range(n_blocks))
    next(blocks)[...] = X
    rng = make_rng(seed)
    p = int(shift_pixels)
    for kind in KINDS:
        if kind not in chosen:
            continue
        if kind == "shifts":
            for dy, dx in ((-p, 0), (p, 0), (0, -p), (0, p)):
                next(blocks)[...] = shift(X, dy, dx, rows_cols)
            continue
        for _ in range(int(copies)):
            distort(X, seed=rng, shape=rows_cols or (1, X.shape[1]), out=next(blocks), **strengths[kind])
    return out, np.tile(y, n_blocks)


# --------------------------------------------------------------------------- fresh distortions every epoch

class Augment(Callback):
    """Training callback: a fresh random distortion of the original training images every epoch.

    Pass it to ``fit(..., callbacks=[Augment(rotate_degrees=10, elastic_alpha=34)])``.
    At the start of training it keeps a copy of the training images; at the
    start of each epoch it writes a new distortion of those originals
    (:func:`distort`) into the training array, so every epoch sees different
    images with the same labels; at the end of training it writes the
    originals back.

    What this relies on in :func:`netlearn.training.fit`: ``state.training_data[0]``
    is the very array from which the mini-batches are gathered (``fit``
    hands the same validated ``X`` to :class:`~netlearn.training.TrainingState`
    and to its batch iterator, which copies rows out of it batch by batch),
    and ``on_epoch_begin`` runs before the epoch's first batch.  Hence two
    consequences: the training figures a Monitor records are on the epoch's
    distorted images, and when ``fit`` validates ``X`` without copying it
    (float32, C-contiguous) the caller's own array is the one overwritten
    during training -- restored at the end, but if training stops with an
    exception it holds the last distortion.  Pass ``X.copy()`` if that matters.

    ``fraction`` (0 to 1] is the share of images distorted each epoch (a
    fresh random subset); the rest are the originals.  ``seed`` seeds the
    draws: the same seed gives the same sequence of epochs.
    """

    #: Tells ``fit`` that the training inputs change between epochs (the compiled
    #: engine then re-indexes their non-zeros each epoch).
    changes_inputs = True

    def __init__(self, rotate_degrees: float = 0.0, elastic_alpha: float = 0.0,
                 elastic_sigma: float = ELASTIC_SIGMA, noise_sigma: float = 0.0, *, fraction: float = 1.0,
                 seed: int | np.random.Generator | None = None, shape: Sequence[int] | None = None) -> None:
        self.strength = dict(rotate_degrees=_check_strength("rotate_degrees", rotate_degrees),
                             elastic_alpha=_check_strength("elastic_alpha", elastic_alpha),
                             elastic_sigma=_check_strength("elastic_sigma", elastic_sigma, allow_zero=False),
                             noise_sigma=_check_strength("noise_sigma", noise_sigma))
        if not any(self.strength[k] for k in ("rotate_degrees", "elastic_alpha", "noise_sigma")):
            raise ValueError("Augment needs at least one of rotate_degrees, elastic_alpha, noise_sigma > 0.")
        fraction = float(fraction)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"The 'fraction' parameter must be in (0, 1]. Got {fraction!r} instead.")
        self.fraction = fraction
        self.rng = make_rng(seed)
        self.shape = shape
        self._X: np.ndarray | None = None
        self._original: np.ndarray | None = None


    def state_dict(self) -> dict:
        """The draw generator's state, so that a resumed run distorts as an uninterrupted one would."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
    def __repr__(self) -> str:
        s = ", ".join(f"{k}={v:g}" for k, v in self.strength.items())
        return f"Augment({s}, fraction={self.fraction:g})"

    def on_train_begin(self, state: TrainingState) -> None:
        X = state.training_data[0]
        shape = self.shape if self.shape is not None else (image_shape(X.shape[1]) if (
            self.strength["rotate_degrees"] or self.strength["elastic_alpha"]) else (1, X.shape[1]))
        self.shape = image_shape(X.shape[1], shape)
        self._X, self._original = X, X.copy()

    def on_epoch_begin(self, state: TrainingState) -> None:
        X, orig = self._X, self._original
        if self.fraction >= 1.0:
            if X.dtype == np.float32:
                distort(orig, seed=self.rng, shape=self.shape, out=X, **self.strength)
            else:  # a float64 network: distort in float32, store in the network's precision
                X[...] = distort(orig, seed=self.rng, shape=self.shape, **self.strength)
            return
        k = max(1, int(round(self.fraction * orig.shape[0])))
        idx = np.sort(self.rng.choice(orig.shape[0], k, replace=False))
        X[...] = orig
        X[idx] = distort(orig[idx], seed=self.rng, shape=self.shape, **self.strength)

    def on_train_end(self, state: TrainingState) -> None:
        if self._X is not None:
            self._X[...] = self._original
        self._X = self._original = None
