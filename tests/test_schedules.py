"""Learning-rate schedules on scripted histories, and through fit."""
import numpy as np
import pytest

import netlearn
from netlearn import optimizers
from netlearn.schedules import Constant, Exponential, HalveOnPlateau, StepDecay
from netlearn.training import History, TrainingState


def make_state(eta=1.0, monitored=("evaluation_accuracy",)):
    return TrainingState(net=None, optimizer=optimizers.sgd(eta), history=History(), training_data=None,
                         evaluation_data=None, epochs=100, monitored=monitored)


def drive(schedule, accuracies, eta=1.0, figure="evaluation_accuracy"):
    """Run the schedule's hooks over a scripted history of one figure; return (etas used, final state)."""
    state = make_state(eta, monitored=(figure,))
    schedule.on_train_begin(state)
    etas = []
    for epoch, acc in enumerate(accuracies):
        state.epoch = epoch
        schedule.on_epoch_begin(state)
        etas.append(state.optimizer.eta)
        getattr(state.history, figure).append(acc)
        schedule.on_epoch_end(state)
        if state.stop:
            break
    return etas, state


def test_constant():
    etas, _ = drive(Constant(), [0.5] * 4, eta=0.3)
    assert etas == [0.3] * 4


def test_step_decay():
    etas, _ = drive(StepDecay(step_size=2, gamma=0.5), [0.5] * 6, eta=1.0)
    assert etas == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_exponential():
    etas, _ = drive(Exponential(gamma=0.9), [0.5] * 4, eta=2.0)
    np.testing.assert_allclose(etas, [2.0, 1.8, 1.62, 1.458])


def test_halving_rule_on_a_scripted_history():
    """Book's rule with n = 2: halve after two epochs without a new best; stop when eta would reach eta0/128."""
    accs = [0.5, 0.6, 0.6, 0.55] + [0.7, 0.6, 0.6] + [0.1] * 100
    etas, state = drive(HalveOnPlateau(patience=2), accs, eta=1.0)
    assert etas[:4] == [1.0, 1.0, 1.0, 1.0]
    assert etas[4:7] == [0.5, 0.5, 0.5]       # halved after epochs 3-4 brought no improvement
    assert etas[7:9] == [0.25, 0.25]
    assert state.stop and "eta0/128" in state.stop_reason
    assert min(etas) == 1 / 64                 # six halvings run, the seventh stops
    assert len(etas) == 7 + 2 * 5              # every later plateau lasts exactly n = 2 epochs


def test_halving_watches_costs_downwards():
    etas, _ = drive(HalveOnPlateau(patience=1, monitor="evaluation_cost"), [3.0, 2.0, 1.0, 0.5], eta=1.0,
                    figure="evaluation_cost")
    assert etas == [1.0] * 4


@pytest.mark.parametrize("make,msg", [
    (lambda: StepDecay(0), "'step_size' parameter must be an integer >= 1"),
    (lambda: StepDecay(2, gamma=1.5), r"'gamma' parameter must be a float in the range \(0, 1\]. Got 1.5"),
    (lambda: Exponential(gamma=0), "'gamma' parameter"),
    (lambda: HalveOnPlateau(patience=0), "'patience' parameter must be an integer >= 1. Got 0"),
    (lambda: HalveOnPlateau(monitor="accuracy"), "'monitor' parameter must be one of"),
    (lambda: Constant(eta0=-1), "'eta0' parameter must be a float in the range"),
])
def test_bad_schedule_arguments(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_schedule_through_fit_records_eta():
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 4)), rng.integers(0, 2, 40)
    net = netlearn.Network([4, 3, 2], seed=0)
    h = net.fit((X, y), 5, 10, 0.8, seed=0, callbacks=[StepDecay(2, 0.5)], monitor_evaluation_accuracy=False)
    assert h.eta == [0.8, 0.8, 0.4, 0.4, 0.2]
    assert h.to_dict()["eta"] == h.eta


def test_halving_needs_a_monitored_figure():
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 4)), rng.integers(0, 2, 40)
    with pytest.raises(ValueError, match="does not record"):
        netlearn.Network([4, 3, 2]).fit((X, y), 2, 10, 0.5, callbacks=[HalveOnPlateau(3)])
