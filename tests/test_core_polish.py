"""What users noticed: plots, output on a closed pipe, python -m netlearn, messages, the Python surface."""
from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import netlearn
from netlearn import plot, training
from netlearn.cli import main

from helpers import write_idx  # noqa: E402
from netlearn.history import History


# -- a tiny MNIST-shaped data root (4x4 images, class = brightest quadrant) -----------------------------------
@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    folder = root / "mnist"
    folder.mkdir()
    g = np.random.default_rng(0)

    def make(n):
        labels = g.integers(0, 4, n)
        images = np.zeros((n, 4, 4), np.uint8)
        for q in range(4):
            r, c = divmod(q, 2)
            sel = labels == q
            images[sel, 2 * r:2 * r + 2, 2 * c:2 * c + 2] = g.integers(150, 256, (sel.sum(), 2, 2))
        return images, labels

    tr, trl = make(10_200)
    te, tel = make(100)
    write_idx(folder / "train-images-idx3-ubyte.gz", tr)
    write_idx(folder / "train-labels-idx1-ubyte.gz", trl)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", te)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", tel)
    return root


COMMON = ["--layers", "16,6,4", "--epochs", "3", "--train-size", "150", "--seed", "3", "--quiet"]


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures the plot functions save, kept for inspection (they are still written)."""
    saved = []
    save = plot.save_figure

    def keep(fig, path):
        saved.append(fig)
        save(fig, path)

    monkeypatch.setattr(plot, "save_figure", keep)
    return saved


def history(epochs=7, cost=True, accuracy=True) -> History:
    h = History()
    for e in range(epochs):
        h.epoch_seconds.append(0.1)
        if cost:
            h.training_cost.append(1.0 / (e + 1))
        if accuracy:
            h.evaluation_accuracy.append(0.5 + 0.05 * e)
    return h


# -- plots -------------------------------------------------------------------------------------------------
def test_learning_curves_have_integer_epoch_ticks(tmp_path, figures):
    plot.plot_history(history(epochs=3), tmp_path / "h.png")
    (fig,) = figures
    for ax in fig.axes:
        fig.canvas.draw()
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


@pytest.mark.parametrize("cost,accuracy,panels", [(True, True, ["cost", "accuracy (%)"]),
                                                  (False, True, ["accuracy (%)"]), (True, False, ["cost"])])
def test_no_panel_for_a_figure_that_was_not_monitored(tmp_path, figures, cost, accuracy, panels):
    plot.plot_history(history(cost=cost, accuracy=accuracy), tmp_path / "h.png")
    assert [ax.get_ylabel() for ax in figures[0].axes] == panels


def test_a_regression_history_gets_r2_and_rmse_panels(tmp_path, figures):
    h = history(accuracy=False)
    h.evaluation_r2[:] = [0.1 * e for e in range(7)]
    h.evaluation_rmse[:] = [3.0 - 0.2 * e for e in range(7)]
    plot.plot_history(h, tmp_path / "h.png")
    assert [ax.get_ylabel() for ax in figures[0].axes] == ["cost", "R²", "RMSE"]
    assert [line.get_label() for line in figures[0].axes[1].get_lines()] == ["evaluation R²"]


def test_a_history_with_nothing_monitored_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Nothing to plot"):
        plot.plot_history(history(cost=False, accuracy=False), tmp_path / "h.png")


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml"),
                                          (".PNG", b"\x89PNG")])
def test_the_file_type_follows_the_suffix(tmp_path, suffix, magic):
    path = tmp_path / f"h{suffix}"
    plot.plot_history(history(), path)
    assert path.read_bytes()[:len(magic)] == magic
    if suffix == ".svg":
        assert b"<svg" in path.read_bytes()[:2000]


@pytest.mark.parametrize("name", ["h.jpg", "h", "h.png.txt"])
def test_another_suffix_is_refused_before_anything_is_written(tmp_path, name):
    with pytest.raises(ValueError, match=r"use \.png, \.pdf, \.svg"):
        plot.plot_history(history(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_train_refuses_a_plot_suffix_before_training(data_root, tmp_path, capsys):
    rc = main(["train", "--data-dir", str(data_root), *COMMON, "--plot", str(tmp_path / "curves.jpg")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "--plot" in err and ".png, .pdf, .svg" in err
    assert "Epoch" not in err


def test_train_plots_pdf_with_one_panel_when_only_accuracy_is_monitored(data_root, tmp_path, figures):
    out = tmp_path / "curves.pdf"
    assert main(["train", "--data-dir", str(data_root), *COMMON, "--plot", str(out)]) == 0
    assert out.read_bytes()[:4] == b"%PDF"
    assert [ax.get_ylabel() for ax in figures[0].axes] == ["accuracy (%)"]


def grid_configs(mus, seeds):
    configs, histories = [], []
    for mu in mus:
        for seed in seeds:
            for eta in (0.1, 1.0):
                for lmbda in (0.0, 1.0):
                    configs.append({"eta": eta, "lmbda": lmbda, "mu": mu, "seed": seed})
                    h = History()
                    h.evaluation_accuracy = [0.5, 0.6 + 0.1 * eta + 0.01 * seed - 0.2 * mu]
                    histories.append(h)
    return configs, histories


def test_grid_heat_map_draws_one_map_per_mu_and_says_it_averages_seeds(tmp_path, figures):
    plot.plot_grid(*grid_configs([0.0, 0.5], [1, 2, 3]), tmp_path / "g.svg")
    fig = figures[0]
    maps = [ax for ax in fig.axes if ax.get_xlabel() == "eta"]
    assert [ax.get_title() for ax in maps] == ["mu = 0", "mu = 0.5"]
    assert "mean of 3 seeds" in fig._suptitle.get_text()
    # the cell for eta=1, lmbda=0, mu=0 is the mean over the three seeds of 0.6 + 0.1 + 0.01 s
    texts = {t.get_text() for t in maps[0].texts}
    assert f"{100 * (0.7 + 0.02):.1f}" in texts


def test_grid_heat_map_of_one_mu_and_one_seed_says_no_mean(tmp_path, figures):
    plot.plot_grid(*grid_configs([0.0], [1]), tmp_path / "g.png")
    fig = figures[0]
    assert "mean" not in fig._suptitle.get_text()
    assert [ax.get_title() for ax in fig.axes if ax.get_xlabel() == "eta"] == [""]


def test_cli_grid_plot_with_mu_and_seeds(data_root, tmp_path, figures, capsys):
    out = tmp_path / "grid.svg"
    rc = main(["grid", "--data-dir", str(data_root), "--layers", "16,6,4", "--eta", "0.5,1", "--lmbda", "0",
               "--mu", "0,0.5", "--seeds", "1,2", "--epochs", "2", "--train-size", "120", "--quiet",
               "--plot", str(out)])
    assert rc == 0 and b"<svg" in out.read_bytes()[:2000]
    fig = figures[0]
    assert len([ax for ax in fig.axes if ax.get_xlabel() == "eta"]) == 2
    assert "mean of 2 seeds" in fig._suptitle.get_text()


# -- output and exit ----------------------------------------------------------------------------------------
def test_a_closed_pipe_ends_quietly(data_root):
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the command writes anything
    try:
        proc = subprocess.run([sys.executable, "-m", "netlearn", "data", "info", "--data-dir", str(data_root)],
                              stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert proc.stderr == "" and proc.returncode == 141


def test_python_dash_m_netlearn_is_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "netlearn", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"netlearn {netlearn.__version__}"


# -- messages -----------------------------------------------------------------------------------------------
def test_with_early_stopping_the_final_accuracy_is_that_of_the_kept_weights(data_root, tmp_path, capsys):
    out = tmp_path / "h.json"
    rc = main(["train", "--data-dir", str(data_root), "--layers", "16,6,4", "--epochs", "30", "--train-size", "60",
               "--eta", "3", "--lmbda", "0", "--seed", "1", "--quiet", "--early-stopping", "2", "--json", str(out),
               "--save", str(tmp_path / "net.json")])
    assert rc == 0
    h = json.loads(out.read_text())
    kept = h["best_epoch"]
    assert kept is not None and kept < len(h["evaluation_accuracy"])
    stdout = capsys.readouterr().out
    assert f"final validation accuracy {100 * h['evaluation_accuracy'][kept - 1]:.2f}%" in stdout
    # and that is the accuracy of the network that was saved
    net = netlearn.load(tmp_path / "net.json")
    validation = netlearn.data.load_mnist(data_root)[1]
    assert f"final validation accuracy {100 * net.accuracy(validation):.2f}%" in stdout


def test_history_kept_is_the_last_epoch_without_early_stopping():
    h = history(epochs=4)
    assert h.kept("evaluation_accuracy") == h.evaluation_accuracy[-1]
    h.best_epoch = 2
    assert h.kept("evaluation_accuracy") == h.evaluation_accuracy[1]
    assert h.kept("training_accuracy") is None


def test_hidden_softmax_is_refused_with_the_reason(data_root, capsys):
    rc = main(["train", "--data-dir", str(data_root), *COMMON, "--activation", "softmax"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "output layer" in err and "--output softmax" in err and "sigmoid" in err


def test_offline_download_error_mentions_mirror(tmp_path, monkeypatch):
    from netlearn.data import download as D

    monkeypatch.setitem(D.MIRRORS, "mnist", ("file:///nonexistent-netlearn-mirror/",))
    with pytest.raises(D.DownloadError, match="--mirror URL"):
        D.download("mnist", tmp_path, timeout=1)


# -- Python -------------------------------------------------------------------------------------------------
def test_import_netlearn_gives_gradcheck():
    code = "import netlearn; print(callable(netlearn.gradcheck.check_module))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "True"


@pytest.mark.parametrize("method", [netlearn.Network.fit, netlearn.Sequential.fit])
def test_fit_spells_out_its_options(method):
    ours = inspect.signature(method).parameters
    theirs = inspect.signature(training.fit).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in ours.values())
    assert list(ours)[1:] == list(theirs)[1:]  # self / net aside, the same names in the same order
    for name in list(theirs)[1:]:
        assert ours[name].default == theirs[name].default and ours[name].kind == theirs[name].kind, name
    for name in ("eta", "lmbda", "optimizer", "callbacks", "engine"):
        assert f"``{name}``" in method.__doc__


def test_every_fit_option_reaches_training_fit(monkeypatch):
    seen = {}

    def spy(net, *args, **kwargs):
        seen.update(kwargs, positional=args)
        return History()

    monkeypatch.setattr(training, "fit", spy)
    net = netlearn.Network([4, 3, 2])
    net.fit(("X", "y"), 2, 5, 0.1, 0.5, "ev", 7, l1=0.25, optimizer="o", monitor_evaluation_cost=True,
            monitor_evaluation_accuracy=False, monitor_training_cost=True, monitor_training_accuracy=True,
            callbacks=["c"], verbose=True, progress=True, max_norm=3.0, resume="r", engine="numpy", threads=2,
            announce=False)
    assert seen.pop("positional") == (("X", "y"), 2, 5, 0.1)
    assert seen == dict(lmbda=0.5, evaluation_data="ev", seed=7, l1=0.25, optimizer="o",
                        monitor_evaluation_cost=True, monitor_evaluation_accuracy=False, monitor_training_cost=True,
                        monitor_training_accuracy=True, callbacks=["c"], verbose=True, progress=True, max_norm=3.0,
                        resume="r", engine="numpy", threads=2, announce=False)
