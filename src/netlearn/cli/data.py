"""``netlearn data``: download the data sets and inspect the data root.

``netlearn data download [--data mnist|fashion-mnist|all] [--data-dir ROOT]``
fetches the four IDX files from public mirrors, verified by MD5;
``netlearn data info [--data-dir ROOT]`` shows the data root, which files are
there and whether each is structurally sound (exit status 1 if a data set
folder is present but not ready: a file missing, damaged, unreadable, or
holding no images; 2 if the root itself is unusable).
"""
from __future__ import annotations

import argparse

from .common import UsageError, positive_float


def register(sub) -> None:
    p = sub.add_parser("data", help="download data sets and inspect the data root",
                       description="Download MNIST / Fashion-MNIST and inspect the data root.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda args: _no_action(p))

    d = dsub.add_parser("download", help="download the IDX files (verified by MD5) into the data root",
                        description="Download the four IDX files of a data set from public mirrors, tried in turn, "
                                    "verified against the official MD5 checksums and written atomically into "
                                    "ROOT/<data set>/. Files already present and sound are kept.",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d.add_argument("--data", choices=["mnist", "fashion-mnist", "all"], default="mnist", help="data set")
    d.add_argument("--data-dir", metavar="ROOT", default=None,
                   help="data root (default: $NETLEARN_DATA, else the per-user cache); created if missing")
    d.add_argument("--mirror", metavar="URL", action="append", default=None,
                   help="base URL to try instead of the built-in mirrors (repeatable), e.g. file:///media/mnist/ "
                        "(default: the built-in mirrors)")
    d.add_argument("--timeout", type=positive_float, default=30.0, help="seconds per request")
    d.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    d.set_defaults(func=run_download)

    i = dsub.add_parser("info", help="show the data root and check the files in it",
                        description="Show the data root, which data files are present, and whether each is "
                                    "structurally sound (magic number, dimensions, length, counts). "
                                    "Exit status 1 if a data set folder is present but not ready (a file missing, damaged, "
                                    "unreadable or empty), 2 if the data root itself is unusable.")
    i.add_argument("--data-dir", metavar="ROOT", default=None,
                   help="data root (default: $NETLEARN_DATA, else the per-user cache)")
    i.set_defaults(func=run_info)


def _no_action(parser) -> int:
    parser.print_help()
    return 2


def _root_and_origin(data_dir):
    """The data root and where it came from: ``--data-dir``, ``$NETLEARN_DATA`` or the per-user cache."""
    from ..data.layout import data_root

    root, explicit = data_root(data_dir)
    origin = "--data-dir" if data_dir is not None else ("$NETLEARN_DATA" if explicit else "per-user cache")
    return root, origin


def run_download(args) -> int:
    from ..data.download import download
    from ..data.mnist import DATASETS, DataError

    try:
        root, _ = _root_and_origin(args.data_dir)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    names = list(DATASETS) if args.data == "all" else [args.data]
    for name in names:
        try:
            written = download(name, root, mirrors=args.mirror, timeout=args.timeout,
                               progress=False if args.quiet else None)
        except DataError as exc:
            raise UsageError(str(exc)) from None
        if not args.quiet:
            folder = root / DATASETS[name]
            if written:
                print(f"{name}: downloaded {', '.join(p.name for p in written)} into {folder}")
            else:
                print(f"{name}: all four files already present in {folder}")
    return 0


def run_info(args) -> int:
    from ..data import formats
    from ..data.errors import DataError
    from ..data.layout import DATASETS, check_folder
    from ..data.mnist import inspect_folder

    try:
        root, origin = _root_and_origin(args.data_dir)
        exists = check_folder(root, "data root")
    except DataError as exc:
        raise UsageError(str(exc)) from None
    print(f"data root: {root}  ({origin}{'' if exists else ', does not exist'})")
    if not exists:
        where = "" if origin == "per-user cache" else f" --data-dir {root}"
        print(f"  nothing there yet; download with: netlearn data download{where}")
        return 0
    not_ready = 0
    for name, sub in DATASETS.items():
        folder = root / sub
        try:
            present = check_folder(folder)
        except DataError as exc:
            print(f"{name}: BAD {exc}")
            not_ready += 1
            continue
        if not present:
            print(f"{name}: {folder} absent  (netlearn data download --data {name} --data-dir {root})")
            continue
        statuses = inspect_folder(folder, name)
        complete = all(s.ok for s in statuses)
        usable_alternative = False
        lines = []
        for s in statuses:
            where = s.path.name if s.path is not None else s.name + "[.gz]"
            mark = "ok " if s.ok else ("-- " if s.path is None else "BAD")
            detail = s.detail[len(str(s.path)):].lstrip() if s.path and s.detail.startswith(str(s.path)) else s.detail
            lines.append(f"  {mark} {where}: {detail}")
        for alt in formats.alternatives(folder, name):
            try:
                if not alt.exists():
                    continue
                training, validation, test = formats.load_path(alt)
            except DataError as exc:
                lines.append(f"  BAD {alt.name}: {exc}")
                continue
            usable_alternative = usable_alternative or not complete
            detail = f"{training[0].shape[0]}/{validation[0].shape[0]}/{test[0].shape[0]} images"
            lines.append(f"  ok  {alt.name}: {detail}{'' if complete else ' (used: the IDX files are incomplete)'}")
        missing = any(s.path is None for s in statuses)
        unusable = any(s.path is not None and not s.ok for s in statuses) or any(l.startswith("  BAD") for l in lines)
        ready = complete or usable_alternative
        verdict = "ready" if ready else ("incomplete: not ready" if missing else "not ready")
        print(f"{name}: {folder}  ({verdict})")
        for line in lines:
            print(line)
        not_ready += (not ready) or unusable
    return 1 if not_ready else 0
