"""The ``--expand`` / ``--augment`` options of ``netlearn train`` (expanded training data).

Kept apart from ``train.py`` so that the training command only calls three
functions: :func:`add_options` when building the parser, :func:`expand_training`
after loading the data, and :func:`callbacks` when calling ``fit``.
"""
from __future__ import annotations

import argparse

from .common import UsageError, nonneg_float, positive_float, positive_int

EXPAND_KINDS = ("shifts", "rotations", "elastic", "noise")
AUGMENT_KINDS = ("rotations", "elastic", "noise")


def _kinds(allowed, option):
    def parse(text: str) -> tuple[str, ...]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        bad = [s for s in items if s not in allowed]
        if not items or bad:
            hint = " (shifts are a fixed expansion: use --expand shifts)" if "shifts" in bad else ""
            raise argparse.ArgumentTypeError(f"expected one or more of {','.join(allowed)} separated by commas, "
                                             f"got {text!r}{hint}")
        return tuple(dict.fromkeys(items))
    parse.__name__ = option  # argparse names the option's type in its messages
    return parse


def add_options(p: argparse.ArgumentParser) -> None:
    """``--expand``, ``--augment`` and the strengths of the distortions."""
    from ..data import augment as A

    g = p.add_argument_group("expanded training data (netlearn.data.augment)")
    g.add_argument("--expand", type=_kinds(EXPAND_KINDS, "expand"), default=None, metavar="KIND[,KIND...]",
                   help="enlarge the training set once before training: shifts (4 one-pixel shifts per image, "
                        "the book's 50,000 -> 250,000), rotations, elastic, noise (one copy each per image) (default: none)")
    g.add_argument("--augment", type=_kinds(AUGMENT_KINDS, "augment"), default=None, metavar="KIND[,KIND...]",
                   help="fresh random distortions of every training image each epoch: rotations, elastic, noise "
                        "(default: none)")
    g.add_argument("--rotate-degrees", type=positive_float, default=A.ROTATE_DEGREES, metavar="DEG",
                   help="largest rotation angle, either way")
    g.add_argument("--elastic-alpha", type=positive_float, default=A.ELASTIC_ALPHA, metavar="PX",
                   help="elastic distortion scale alpha, in pixels (Simard et al.: 34)")
    g.add_argument("--elastic-sigma", type=positive_float, default=A.ELASTIC_SIGMA, metavar="PX",
                   help="elastic distortion smoothing sigma, in pixels (Simard et al.: 4)")
    g.add_argument("--noise-sigma", type=positive_float, default=A.NOISE_SIGMA, metavar="S",
                   help="standard deviation of the Gaussian pixel noise (pixels are in [0, 1])")
    g.add_argument("--augment-fraction", type=nonneg_float, default=1.0, metavar="F",
                   help="share of the training images distorted each epoch with --augment (0 < F <= 1)")
    g.add_argument("--expand-copies", type=positive_int, default=1, metavar="K",
                   help="random copies per image for each of rotations/elastic/noise with --expand")


def expand_training(args, training):
    """The training pair, enlarged by ``--expand`` if given (seeded by ``--seed``)."""
    if not getattr(args, "expand", None):
        return training
    from ..data import augment as A

    try:
        return A.expand(*training, args.expand, seed=args.seed, copies=args.expand_copies,
                        rotate_degrees=args.rotate_degrees, elastic_alpha=args.elastic_alpha,
                        elastic_sigma=args.elastic_sigma, noise_sigma=args.noise_sigma)
    except ValueError as exc:
        raise UsageError(f"--expand: {exc}") from None


def callbacks(args) -> list:
    """``[Augment(...)]`` for ``--augment``, else ``[]``."""
    if not getattr(args, "augment", None):
        return []
    from ..data import augment as A

    kinds = set(args.augment)
    if not 0.0 < args.augment_fraction <= 1.0:
        raise UsageError(f"--augment-fraction must be in (0, 1]; got {args.augment_fraction}.")
    import numpy as np

    # A stream of its own, so that the distortions do not echo the shuffling drawn from --seed.
    seed = None if args.seed is None or args.seed < 0 else np.random.default_rng([args.seed, 0xA06])
    try:
        return [A.Augment(rotate_degrees=args.rotate_degrees if "rotations" in kinds else 0.0,
                          elastic_alpha=args.elastic_alpha if "elastic" in kinds else 0.0,
                          elastic_sigma=args.elastic_sigma,
                          noise_sigma=args.noise_sigma if "noise" in kinds else 0.0,
                          fraction=args.augment_fraction, seed=seed)]
    except ValueError as exc:
        raise UsageError(f"--augment: {exc}") from None
