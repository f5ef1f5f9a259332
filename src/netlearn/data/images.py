"""Real images as MNIST digits: read anything Pillow opens and prepare it the way MNIST was made.

MNIST's digits are white on black, their size normalized to fit a 20x20 box
(keeping the aspect ratio, anti-aliased, so edges are grey), then placed in a
28x28 field with their centre of mass at the centre.  A photographed or
scanned digit is none of this: dark ink on light, greyish paper, of any size
and with noise.  :func:`prepare_digit` undoes that in six steps:

1. grey: colour is weighted to luminance (ITU-R 601), transparency composited on white, and an
   image longer than :data:`MAX_SIDE` pixels reduced to it by area averaging;
2. polarity: the border is background; a light border means dark-on-light, so invert;
3. background: subtract the border's level, stretch the contrast so the ink is 1, and set what
   stays below :data:`NOISE` (paper texture, JPEG ripples) to 0;
4. crop to the bounding box of what is left;
5. scale the longest side to 20 pixels with Pillow's anti-aliased Lanczos filter;
6. paste into 28x28 so that the centre of mass is at pixel (14, 14) (counting from 0), where MNIST has it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from .mnist import DataError

#: Fraction of the side taken as the border band whose median is the background level.
BORDER = 0.05
#: After subtracting the background and stretching, values below this are noise.
NOISE = 0.25
#: MNIST's box for the digit and its field.
BOX, FIELD = 20, 28
#: Longer images are first reduced to this side (area averaging), before anything else.
MAX_SIDE = 1024


class ImageError(DataError):
    """A file that is not an image Pillow can read, or an image with no digit in it."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The image in ``path`` as float32 grey levels in [0, 1] ``(rows, cols)``; 1 is white.

    Transparent pixels count as white paper; a photo's EXIF orientation is applied.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, im)
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                a = np.asarray(im, dtype=np.float64)
                top = a.max()
                a = a / top if top > 0 else a
            else:
                a = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not an image that Pillow can read (PNG, JPEG, GIF, BMP, TIFF, WebP, ...).") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path} is too large to read safely ({exc}).") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or damaged image data
        raise ImageError(f"{path} cannot be read as an image: {exc}.") from None
    if a.ndim != 2 or a.size == 0:
        raise ImageError(f"{path} has no pixels.")
    a = a.astype(np.float32)
    if max(a.shape) > MAX_SIDE:  # a camera's 12 megapixels: a digit needs far fewer, and memory stays small
        s = MAX_SIDE / max(a.shape)
        size = (max(1, round(a.shape[1] * s)), max(1, round(a.shape[0] * s)))
        a = np.asarray(Image.fromarray(a, mode="F").resize(size, Image.Resampling.BOX), dtype=np.float32)
    return a


def prepare_digit(grey: np.ndarray, name: str = "the image") -> np.ndarray:
    """A grey image ``(rows, cols)`` in [0, 1] as an MNIST-style float32 vector of 784 pixels, white on black."""
    from PIL import Image

    g = np.asarray(grey, dtype=np.float64)
    r, c = g.shape
    band = max(1, int(round(BORDER * min(r, c))))
    border = np.concatenate([g[:band].ravel(), g[-band:].ravel(), g[:, :band].ravel(), g[:, -band:].ravel()])
    if np.median(border) > 0.5:  # light paper: dark ink on light
        g, border = 1.0 - g, 1.0 - border
    g = g - np.median(border)
    top = g.max()
    if top <= 1e-6:
        raise ImageError(f"{name} shows no digit: every pixel has the background's level.")
    g = np.clip(g / top, 0.0, 1.0)
    g[g < NOISE] = 0.0
    rows, cols = np.flatnonzero(g.any(axis=1)), np.flatnonzero(g.any(axis=0))
    g = g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = g.shape
    s = BOX / max(h, w)
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    small = np.asarray(Image.fromarray(g.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS),
                       dtype=np.float64)
    small = np.clip(small, 0.0, None)
    small /= max(small.max(), 1e-12)
    total = small.sum()
    yy, xx = np.indices(small.shape)
    cy, cx = (yy * small).sum() / total, (xx * small).sum() / total
    field = np.zeros((FIELD, FIELD))
    top_, left = int(round(FIELD / 2 - cy)), int(round(FIELD / 2 - cx))
    # Paste with clipping: a digit whose mass sits near one edge may push past the field.
    y0, x0 = max(top_, 0), max(left, 0)
    y1, x1 = min(top_ + small.shape[0], FIELD), min(left + small.shape[1], FIELD)
    field[y0:y1, x0:x1] = small[y0 - top_:y1 - top_, x0 - left:x1 - left]
    # The rest of the way by linear interpolation, so that the centre of mass lands on the centre
    # itself and not up to half a pixel off (which a thin stroke would show as a different image).
    dy, dx = FIELD / 2 - (cy + top_), FIELD / 2 - (cx + left)
    field = np.clip(ndimage.shift(field, (dy, dx), order=1, mode="constant"), 0.0, 1.0)
    return field.astype(np.float32).reshape(-1)


def load_digit(path: str | os.PathLike, preprocess: bool = True, side: int = FIELD) -> np.ndarray:
    """One image file as a row of ``side * side`` pixels in [0, 1].

    By default prepared as MNIST was (:func:`prepare_digit`); with
    ``preprocess=False`` taken as it is: grey, and resized to ``side x side``
    when it is not (no inversion, no centring).
    """
    grey = read_image(path)
    if preprocess:
        if side != FIELD:
            raise ImageError(f"preparing a digit makes 28x28 images; this model takes {side}x{side}. Use "
                             f"--no-preprocess.")
        return prepare_digit(grey, str(path))
    if grey.shape != (side, side):
        from PIL import Image

        grey = np.asarray(Image.fromarray(grey, mode="F").resize((side, side), Image.Resampling.LANCZOS))
    return np.clip(grey, 0.0, 1.0).astype(np.float32).reshape(-1)
