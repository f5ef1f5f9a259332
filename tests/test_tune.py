"""netlearn.search.book (``netlearn tune``): the decision rules on made-up curves, and one tiny run end to end."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from netlearn.cli import main

from helpers import write_idx  # noqa: E402
from netlearn.search import book

PNG = b"\x89PNG\r\n\x1a\n"


# -- step 1: the learning-rate threshold -------------------------------------------------------------

def falling(c0: float = 3.0, epochs: int = 3) -> list[float]:
    return [c0 * 0.6 ** e for e in range(epochs + 1)]


def oscillating(c0: float = 3.0, epochs: int = 3) -> list[float]:
    return [c0] + [c0 * (0.5 if e % 2 else 0.8) for e in range(1, epochs + 1)]  # down, up, down


def test_cost_verdicts():
    assert book.cost_verdict([3.0, 2.0, 1.5, 1.2]) == "fell"
    assert book.cost_verdict([3.0, 2.0, 2.1, 1.2]) == "oscillated"
    assert book.cost_verdict([3.0, 4.0, 2.0, 1.0]) == "rose"  # the first epoch already raised it
    assert book.cost_verdict([3.0, 2.0, math.nan, 1.0]) == "diverged"
    assert book.cost_verdict([3.0, 2.0]) == "diverged"  # frozen before the window ended
    assert book.cost_verdict([3.0, 2.0, 2.1], window=1) == "fell"  # only the first epoch is watched


def curves_with_threshold(true_threshold: float, log: list):
    """A ``run`` for find_threshold: cost falls at eta <= true_threshold and oscillates above it."""
    def run(etas, stage):
        log.append((stage, list(etas)))
        return [falling() if eta <= true_threshold * (1 + 1e-9) else oscillating() for eta in etas]
    return run


def test_threshold_found_on_curves_made_to_oscillate():
    log = []
    found, rounds, words = book.find_threshold(curves_with_threshold(2.3, log))
    assert [stage for stage, _ in log] == ["coarse", "refine"]
    assert log[0][1] == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0])
    assert log[1][1] == pytest.approx([1.5, 2, 3, 4, 5, 6, 7, 8])  # refined within 1 .. 10
    assert found == pytest.approx(2.0)  # falls at 2, oscillates at 3
    assert words == "cost fell at 0.01, 0.1 and 1 and oscillated at 10; refined: still falls at 2, oscillated at 3"
    assert rounds[0]["verdict"] == ["fell", "fell", "fell", "oscillated", "oscillated"]


def test_threshold_below_the_first_eta_goes_down_by_tens():
    log = []
    found, _, words = book.find_threshold(curves_with_threshold(0.0042, log))
    assert [stage for stage, _ in log] == ["coarse", "down", "refine"]
    assert log[1][1] == pytest.approx([1e-3, 1e-4, 1e-5, 1e-6])
    assert found == pytest.approx(0.004)  # 0.001 x 4 falls, x 5 oscillates
    assert "oscillated at 0.01" in words


def test_threshold_when_the_first_refinement_already_fails_and_when_nothing_fails():
    found, _, words = book.find_threshold(curves_with_threshold(1.2, []))
    assert found == pytest.approx(1.0) and "already oscillated at 1.5" in words
    found, rounds, words = book.find_threshold(curves_with_threshold(1e9, []))
    assert found == pytest.approx(100.0) and len(rounds) == 1 and "largest tried" in words


def test_threshold_search_gives_up_with_a_clear_message():
    with pytest.raises(ValueError, match="does not fall"):
        book.find_threshold(lambda etas, stage: [oscillating() for _ in etas])


def test_threshold_scan_stops_at_the_first_failure():
    # A lucky fall above an oscillation does not count: the threshold is where the cost first stops falling.
    assert book.threshold([0.1, 1, 2, 3, 6], ["fell", "fell", "fell", "oscillated", "fell"]) == 2
    assert book.threshold([1, 0.1], ["oscillated", "fell"]) == 0.1  # unsorted input
    assert book.threshold([0.1], ["rose"]) is None
    assert book.first_failure([0.1, 10, 1], ["fell", "rose", "oscillated"]) == 1


# -- step 2: epochs by early stopping -----------------------------------------------------------------

def test_early_stopping_epoch():
    acc = [0.90, 0.93, 0.95, 0.96] + [0.955] * 10 + [0.97]
    assert book.early_stopping_epoch(acc, patience=10) == (4, 14)  # never sees the late 0.97
    assert book.early_stopping_epoch([0.9, 0.91, 0.92], patience=10) == (3, None)
    assert book.early_stopping_epoch([0.9, 0.9, 0.9], patience=2) == (1, 3)  # a tie is no improvement
    assert book.early_stopping_epoch([], patience=2) == (0, None)


# -- step 3: lambda --------------------------------------------------------------------------------------

def test_lambda_walk_up_down_and_zero():
    up = {0.0: 0.95, 0.001: 0.95, 0.01: 0.95, 0.1: 0.951, 1.0: 0.955, 10.0: 0.96, 100.0: 0.94, 1000.0: 0.5}
    assert book.lambda_walk(up) == (10.0, [0.0, 1.0, 10.0, 100.0])
    down = {0.0: 0.95, 0.001: 0.95, 0.01: 0.956, 0.1: 0.953, 1.0: 0.952, 10.0: 0.94, 100.0: 0.9}
    assert book.lambda_walk(down) == (0.01, [0.0, 1.0, 10.0, 0.1, 0.01, 0.001])
    stay = {0.0: 0.95, 0.1: 0.951, 1.0: 0.955, 10.0: 0.95}
    assert book.lambda_walk(stay) == (1.0, [0.0, 1.0, 10.0, 0.1])
    none_helps = {0.0: 0.96, 0.1: 0.95, 1.0: 0.955, 10.0: 0.95}
    assert book.lambda_walk(none_helps)[0] == 0.0
    # Keys made by repeated division (0.1 * 0.1 != 0.01) are still found; a diverged (nan) lambda stops the walk.
    odd = {0.0: 0.9, 5.0: 0.92, 0.5: 0.95, 0.05: 0.94, 50.0: math.nan}
    assert book.lambda_walk(odd, start=5.0) == (0.5, [0.0, 5.0, 0.5, 0.05])


def test_best_candidate():
    assert book.best_candidate([0.9, 0.95, 0.95, math.nan]) == 1
    assert book.best_candidate([-math.inf, math.nan]) == -1


# -- step 5: mini-batch size by accuracy per second ---------------------------------------------------

def test_accuracy_at_interpolates_the_wall_clock_curve():
    assert book.accuracy_at([1.0, 1.0], [0.8, 0.9], 0.5, start=0.1) == pytest.approx(0.45)
    assert book.accuracy_at([1.0, 1.0], [0.8, 0.9], 1.5, start=0.1) == pytest.approx(0.85)
    assert book.accuracy_at([1.0, 1.0], [0.8, 0.9], 10.0, start=0.1) == pytest.approx(0.9)


def test_batch_size_by_accuracy_per_second():
    curves = {
        1: ([4.0, 4.0], [0.93, 0.95]),  # best per epoch but slow
        10: ([1.0] * 8, [0.90, 0.93, 0.94, 0.95, 0.955, 0.96, 0.96, 0.962]),
        100: ([0.5] * 16, [0.6 + 0.02 * e for e in range(16)]),  # fast epochs, little learned in each
    }
    best, rates = book.choose_batch_size(curves, t=4.0, start=0.1)
    assert best == 10
    assert rates[10] == pytest.approx((0.95 - 0.1) / 4.0)
    assert rates[1] == pytest.approx((0.93 - 0.1) / 4.0)
    assert rates[100] == pytest.approx((0.74 - 0.1) / 4.0)
    assert book.choose_batch_size({5: ([1.0], [0.9]), 2: ([1.0], [0.9])}, t=1.0)[0] == 2  # ties: the smaller


# -- the whole strategy on tiny data ----------------------------------------------------------------

def tiny_data(n: int, seed: int, features: int = 16, classes: int = 3):
    """Points around three prototypes: learnable in a few epochs, so every step has something to see."""
    g = np.random.default_rng(seed)
    protos = np.random.default_rng(99).random((classes, features))
    y = g.integers(0, classes, n)
    X = np.clip(protos[y] + 0.25 * g.standard_normal((n, features)), 0, 1).astype(np.float32)
    return X, y


def test_tune_end_to_end_on_tiny_data(tmp_path):
    lines = []
    result = book.tune(tiny_data(200, 1), tiny_data(100, 2), tiny_data(100, 3), sizes=[16, 6, 3], seed=4,
                       max_epochs=12, patience=3, threshold_images=100, batch_sizes=(5, 20), batch_seconds=0.02,
                       log=lines.append)
    doc = json.loads(json.dumps(result.to_dict()))
    for key in ("eta_threshold", "eta", "lmbda", "epochs", "batch_size", "steps", "final"):
        assert key in doc
    assert [s["name"] for s in doc["steps"]] == ["learning-rate threshold", "epochs", "lambda",
                                                 "learning-rate schedule", "mini-batch size"]
    for s in doc["steps"]:
        assert s["tried"] and s["observed"] and s["decision"]
    assert 0 < doc["eta"] <= doc["eta_threshold"]
    assert doc["batch_size"] in (5, 20) and 1 <= doc["epochs"] <= 12
    for k in ("validation_accuracy", "test_accuracy"):
        assert 0 <= doc["final"][k] <= 1
    assert doc["final"]["validation_accuracy"] > 0.6  # three well separated classes
    assert doc["final"]["test_accuracy"] == result.network.accuracy(tiny_data(100, 3))
    assert any(line.startswith("  decided") for line in lines) and lines[-1].startswith("  validation accuracy")
    # The threshold step's own story holds together: every eta it kept fell, the first above it did not.
    step1 = doc["steps"][0]["observed"]
    kept = [o for o in step1 if o["eta"] <= doc["eta_threshold"] * (1 + 1e-9)]
    assert kept and all(o["verdict"] == "fell" for o in kept)
    paths = book.plot_steps(doc, tmp_path / "plots")
    assert len(paths) == 5
    for p in paths:
        assert open(p, "rb").read(8) == PNG


def test_tune_falls_back_to_single_networks_when_the_population_cannot_train_it():
    # use_population=False is the path taken when the population's kernels refuse an architecture.
    s = book._Setup([16, 6, 3], {"activation": "sigmoid", "cost": "cross-entropy", "init": "default", "output": None},
                    tiny_data(60, 1), tiny_data(30, 2), 0, 10, 1, lambda line: None, use_population=False)
    hs, nets, diverged, how = s.together([0.5, 1.0], [0.0, 0.1], 2)
    assert how == "2 networks one after another" and len(hs) == 2 and all(len(h.evaluation_accuracy) == 2 for h in hs)
    s2 = book._Setup(s.sizes, s.network, s.training, s.validation, 0, 10, 1, lambda line: None)
    hs2, _, diverged2, how2 = s2.together([0.5, 1.0], [0.0, 0.1], 2)
    assert how2 == "one population of 2" and diverged == diverged2 == [False, False]
    # The same initial weights and shuffles: the population's members are the single networks (float32 rounding).
    for a, b in zip(hs, hs2):
        assert a.evaluation_accuracy == pytest.approx(b.evaluation_accuracy, abs=0.04)


def test_tune_cli_errors(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert main(["tune", "--data-dir", str(tmp_path), "--plot", str(not_a_folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a file" in err
    assert main(["tune", "--data-dir", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["tune", "--batch-sizes", "10,0"])
    assert exc.value.code == 2


def test_batch_size_keeps_the_incumbent_within_noise():
    curves = {10: ([1.0] * 4, [0.95, 0.96, 0.965, 0.966]), 20: ([0.8] * 5, [0.95, 0.962, 0.966, 0.9665, 0.967])}
    best, _ = book.choose_batch_size(curves, t=4.0, start=0.1)
    assert best == 20  # a little faster
    se = book.standard_error(0.966, 10_000)
    assert se == pytest.approx((0.966 * 0.034 / 10_000) ** 0.5)
    assert book.choose_batch_size(curves, t=4.0, start=0.1, incumbent=10, margin=se)[0] == 10  # within noise
    assert book.choose_batch_size(curves, t=4.0, start=0.1, incumbent=10, margin=0.0001)[0] == 20


def test_tune_cli_writes_json_model_and_one_figure_per_step(tmp_path, capsys):
    from netlearn import load

    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    g = np.random.default_rng(0)
    for prefix, n in (("train", 10_200), ("t10k", 100)):  # 200 training images after the 10,000 validation ones
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", (g.random((n, 28, 28)) < 0.1) * 255)
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", g.integers(0, 10, n))
    out = tmp_path / "out"
    out.mkdir()
    status = main(["tune", "--data-dir", str(root), "--layers", "784,8,10", "--epochs", "4", "--patience", "2",
                   "--threshold-images", "100", "--batch-sizes", "10,20", "--batch-seconds", "0.01",
                   "--json", str(out / "tune.json"), "--save", str(out / "net.json"), "--plot", str(out / "plots"),
                   "--quiet"])
    assert status == 0
    text = capsys.readouterr().out
    assert text.startswith("tuned: eta=") and len(text.strip().splitlines()) == 1  # --quiet: the final line only
    doc = json.loads((out / "tune.json").read_text())
    assert set(doc) >= {"eta_threshold", "eta", "lmbda", "epochs", "batch_size", "steps", "final"}
    assert all(set(s) >= {"name", "tried", "observed", "decision"} for s in doc["steps"])
    net = load(out / "net.json")
    assert net.sizes == [784, 8, 10]
    assert len(list((out / "plots").glob("step*.png"))) == 5


def test_a_diverged_candidate_is_never_the_best():
    s = book._Setup([16, 6, 3], {"activation": "sigmoid", "cost": "cross-entropy", "init": "default", "output": None},
                    tiny_data(60, 1), tiny_data(30, 2), 0, 10, 1, lambda line: None)
    # Sigmoid units keep every gradient bounded, so only a step near float32's largest number overflows the weights.
    hs, _, diverged, _ = s.together([0.5, 3e38], [0.0, 0.0], 3)
    assert diverged == [False, True]
    scores = [book._best(h, d) for h, d in zip(hs, diverged)]
    assert scores[1] == -math.inf and book.best_candidate(scores) == 0
