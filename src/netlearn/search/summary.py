"""A study's results: the JSON summary, the table (best first), and the figures.

JSON (``--json``)::

    {"study", "sampler", "best": {"number", "params", "value"},
     "trials": [{"number", "state", "params", "value", "epochs",
                 "history": {"evaluation_accuracy": [...]}}],
     "network_epochs", "seconds"}

States are Optuna's names; values and accuracies are fractions in [0, 1];
``network_epochs`` sums the epochs trained over all trials (pruning's saving
shows there); ``seconds`` is the search's wall time (for ``search show``, from
the first trial's start to the last one's end).
"""
from __future__ import annotations

from typing import Any

from ..plot import save_figure
from .study import SETTINGS_KEY


def summary(study: Any, seconds: float | None = None) -> dict:
    """The JSON summary of ``study`` (see the module docstring)."""
    trials = study.get_trials(deepcopy=False)
    settings = study.user_attrs.get(SETTINGS_KEY, {})
    rows = []
    for t in trials:
        curve = [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
        rows.append({"number": t.number, "state": t.state.name, "params": dict(t.params), "value": t.value,
                     "epochs": int(t.user_attrs.get("epochs", len(curve))),
                     "history": {"evaluation_accuracy": curve},
                     **({"diverged": t.user_attrs["diverged"]} if "diverged" in t.user_attrs else {}),
                     **({"retry_of": t.system_attrs["failed_trial"]} if "failed_trial" in t.system_attrs else {})})
    complete = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    best = max(complete, key=lambda r: (r["value"], -r["number"]), default=None)
    if seconds is None:
        starts = [t.datetime_start for t in trials if t.datetime_start]
        ends = [t.datetime_complete for t in trials if t.datetime_complete]
        seconds = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    return {"study": study.study_name, "sampler": settings.get("sampler"),
            "best": None if best is None else {"number": best["number"], "params": best["params"],
                                               "value": best["value"]},
            "trials": rows, "network_epochs": sum(r["epochs"] for r in rows), "seconds": float(seconds)}


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def table(s: dict, limit: int | None = None) -> str:
    """One line per trial, best first (finished trials by value, then the others by number)."""
    order = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "WAITING": 3, "FAIL": 4}
    rows = sorted(s["trials"], key=lambda r: (order.get(r["state"], 5), -(r["value"] or 0.0), r["number"]))
    names = sorted({k for r in rows for k in r["params"]})
    head = f"{'trial':>5} {'state':>8} {'accuracy':>9} {'epochs':>6}  " + "  ".join(f"{n:>10}" for n in names)
    lines = [head]
    for r in rows[:limit]:
        acc = "-" if r["value"] is None else f"{100 * r['value']:.2f}%"
        params = "  ".join(f"{_fmt(r['params'].get(n, '-')):>10}" for n in names)
        note = f"  diverged in epoch {r['diverged']}" if "diverged" in r else ""
        lines.append(f"{r['number']:>5} {r['state']:>8} {acc:>9} {r['epochs']:>6}  {params}{note}")
    best = s["best"]
    tail = (f"best: trial {best['number']}, {100 * best['value']:.2f}%" if best else "no complete trial yet")
    lines.append(f"{tail}; {len(s['trials'])} trials, {s['network_epochs']} network-epochs, {s['seconds']:.1f} s")
    return "\n".join(lines)


def plot(s: dict, path: str, curves: int = 5) -> None:
    """Best accuracy against each parameter (one panel each), and the learning curves of the best trials."""
    import numpy as np
    from matplotlib.figure import Figure

    done = [r for r in s["trials"] if r["history"]["evaluation_accuracy"]]
    names = sorted({k for r in done for k in r["params"]})
    panels = len(names) + 1
    fig = Figure(figsize=(4.2 * panels, 3.6), dpi=100)
    axes = np.atleast_1d(fig.subplots(1, panels))
    for ax, name in zip(axes, names):
        pts = [(r["params"][name], max(r["history"]["evaluation_accuracy"]), r["state"]) for r in done
               if name in r["params"]]
        numeric = all(isinstance(p[0], (int, float)) for p in pts)
        labels = sorted({str(p[0]) for p in pts}) if not numeric else None
        for state, marker in (("COMPLETE", "o"), ("PRUNED", "x")):
            xs = [p[0] if numeric else labels.index(str(p[0])) for p in pts if p[2] == state]
            ys = [100 * p[1] for p in pts if p[2] == state]
            if xs:
                ax.scatter(xs, ys, marker=marker, s=18, label=state.lower())
        if numeric and pts and min(p[0] for p in pts) > 0 and max(p[0] for p in pts) / min(p[0] for p in pts) > 20:
            ax.set_xscale("log")
        if labels is not None:
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(name)
        ax.set_ylabel("best evaluation accuracy (%)")
        ax.legend(loc="lower right", fontsize=8)
    ax = axes[-1]
    best = sorted((r for r in done if r["state"] == "COMPLETE"), key=lambda r: -(r["value"] or 0))[:curves]
    for r in best:
        acc = r["history"]["evaluation_accuracy"]
        ax.plot(range(1, len(acc) + 1), [100 * a for a in acc], marker=".", label=f"trial {r['number']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("evaluation accuracy (%)")
    ax.set_title(f"the {len(best)} best trials")
    if best:
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"study {s['study']} ({s['sampler']}): {len(s['trials'])} trials")
    fig.tight_layout()
    save_figure(fig, path)


__all__ = ["summary", "table", "plot"]
