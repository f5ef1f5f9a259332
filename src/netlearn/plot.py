"""Learning curves: cost and accuracy per epoch, training and evaluation, as a PNG."""
from __future__ import annotations

import os


def plot_history(history, path: str | os.PathLike, title: str = "") -> None:
    """Draw the monitored figures of ``history`` (cost left, accuracy right) and save to ``path`` atomically."""
    # A bare Figure needs no GUI backend and changes no global matplotlib state.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("cost", "accuracy")):
        for which in ("training", "evaluation"):
            values = getattr(history, f"{which}_{kind}")
            if values:
                ys = [100 * v for v in values] if kind == "accuracy" else values
                ax.plot(range(1, len(values) + 1), ys, label=f"{which} {kind}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(kind + (" (%)" if kind == "accuracy" else ""))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"{kind} not monitored", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike) -> None:
    """Save a matplotlib figure as PNG via a temporary file and a rename."""
    import tempfile
    from pathlib import Path

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
