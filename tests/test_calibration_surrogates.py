"""Surrogate fits, gradients and save/load round trips, on exact-solver tiles (no SPICE needed)."""

import numpy as np
import pytest
import torch

from spicecross.calibration import TileConditions, fit_ir_drop, fit_learned, nrmse, solve_tiles
from spicecross.calibration.errors import CalibrationError
from spicecross.calibration.fit import wiring_of
from spicecross.calibration.score import check_goal, measure_cost, predict
from spicecross.devices import builtin_device
from spicecross.surrogates import DeviceOnlySurrogate, FittedLaw, IRDropSurrogate, Wiring
from spicecross.surrogates.io import load_surrogate, save_surrogate
from spicecross.surrogates.learned import LearnedCorrectionSurrogate
from spicecross.surrogates.models import SURROGATE_KINDS

LAW = FittedLaw("power_law", {"n": 2.8})
DEVICE = builtin_device("power_law", n=2.8)
CONDITIONS = TileConditions(16, 16, 8.0, 8.0, g_min=5e-6, g_max=5e-5)


@pytest.fixture(scope="module")
def tiles():
    train = solve_tiles(
        CONDITIONS, ["random", "binary"], lambda g: DEVICE, vectors=16, seed=0, engine="exact"
    )
    test = solve_tiles(
        CONDITIONS, ["random", "log-random"], lambda g: DEVICE, vectors=16, seed=1, engine="exact"
    )
    return train, test


def test_learned_kind_registered():
    assert SURROGATE_KINDS["learned"] is LearnedCorrectionSurrogate


def test_ir_drop_fit_beats_device_only(tiles):
    train, test = tiles
    model, info = fit_ir_drop(LAW, wiring_of(train), train, sweep_counts=(1, 2), sweeps_target=0.005)
    device_only = nrmse(predict(DeviceOnlySurrogate(LAW), test)[0], test.currents)
    fitted = nrmse(predict(model, test)[0], test.currents)
    assert device_only > 0.03
    assert fitted < device_only / 10
    assert info["sweeps"] in (1, 2)
    assert info["by_sweeps"][1]["nrmse"] <= info["by_sweeps"][1]["unfitted_nrmse"]


def test_learned_correction_reduces_training_error(tiles):
    train, _ = tiles
    base = IRDropSurrogate(LAW, wiring_of(train), sweeps=1)
    model, info = fit_learned(base, train, steps=150)
    assert info["training_nrmse"] < info["base_training_nrmse"]


def test_untrained_learned_equals_base(tiles):
    train, _ = tiles
    base = IRDropSurrogate(LAW, wiring_of(train), sweeps=2)
    v, g = torch.as_tensor(train.voltages[0]), torch.as_tensor(train.conductances[0])
    np.testing.assert_allclose(
        LearnedCorrectionSurrogate(base)(v, g).currents.detach(), base(v, g).currents.detach(), rtol=1e-14
    )


@pytest.mark.parametrize("kind", ["ir_drop", "learned"])
def test_surrogate_gradcheck(kind):
    torch.manual_seed(0)
    law = FittedLaw("power_law", n_coeffs=[2.0, 0.15, 0.12], n_g_ref=5e-4)
    model = IRDropSurrogate(law, Wiring(50.0, 30.0, 10.0, 5.0), sweeps=2)
    with torch.no_grad():
        model.log_scale_word.fill_(0.1)
    if kind == "learned":
        model = LearnedCorrectionSurrogate(model, hidden=4)
        torch.nn.init.normal_(model.net[-1].weight, std=0.1)
    rng = np.random.default_rng(0)
    v = torch.tensor(rng.uniform(0.05, 0.5, (2, 4)), dtype=torch.float64, requires_grad=True)
    g = torch.tensor(rng.uniform(1e-5, 1e-4, (4, 3)), dtype=torch.float64, requires_grad=True)
    names = [name for name, p in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())

    def outputs(v, g, *values):
        out = torch.func.functional_call(model, dict(zip(names, values, strict=False)), (v, g))
        # Scale to amperes times 1e4 so that gradcheck's absolute tolerance is meaningful.
        return out.currents * 1e4, out.power * 1e4

    assert torch.autograd.gradcheck(outputs, (v, g, *params), eps=1e-7, atol=1e-8, rtol=1e-5)


@pytest.mark.parametrize("kind", ["ir_drop", "learned"])
def test_save_load_round_trip(tmp_path, tiles, kind):
    train, test = tiles
    model, _ = fit_ir_drop(LAW, wiring_of(train), train, sweep_counts=(1,))
    if kind == "learned":
        model, _ = fit_learned(model, train, steps=30)
    provenance = {"train_sweeps": train.provenance()}
    path = save_surrogate(model, tmp_path / kind, provenance)
    loaded, stored = load_surrogate(path)
    assert type(loaded) is type(model)
    assert stored["train_sweeps"]["conditions"]["r_word"] == 8.0
    before, after = predict(model, test)[0], predict(loaded, test)[0]
    np.testing.assert_array_equal(before, after)


def test_cost_is_measured_single_threaded():
    threads = torch.get_num_threads()
    cost = measure_cost(DeviceOnlySurrogate(LAW), 8, 8, g_min=1e-5, g_max=1e-4, v_max=0.5, batch=4, repeats=2)
    assert cost["forward_ms"] > 0
    assert cost["backward_ms"] > 0
    assert cost["threads"] == 1
    assert torch.get_num_threads() == threads


def test_goal_check_picks_cheap_accurate_surrogate():
    scores = {
        "device_only": {"nrmse": 0.2, "cost": {"relative_to_device_only": 1.0}},
        "ir_drop": {"nrmse": 0.005, "cost": {"relative_to_device_only": 4.0}},
        "learned": {"nrmse": 0.001, "cost": {"relative_to_device_only": 6.0}},
    }
    goal = check_goal(scores, nrmse_goal=0.01, max_cost=5.0)
    assert goal["best_fast"] == "ir_drop"
    assert goal["met"]


class _FailingExecutor:
    def run_each(self, netlists):
        raise AssertionError("a stored tile was solved again")


@pytest.mark.ngspice
def test_tile_sweeps_resume_from_folder(tmp_path, ngspice_runner):
    from spicecross.calibration import NetlistExecutor

    conditions = TileConditions(4, 3, 1.0, 1.0)
    with NetlistExecutor(1) as executor:
        first = solve_tiles(
            conditions, ["random", "binary"], lambda g: DEVICE, vectors=3, executor=executor, folder=tmp_path
        )
    assert len(list(tmp_path.glob("*.npz"))) == 2
    again = solve_tiles(
        conditions,
        ["random", "binary"],
        lambda g: DEVICE,
        vectors=3,
        executor=_FailingExecutor(),
        folder=tmp_path,
    )
    np.testing.assert_array_equal(first.currents, again.currents)
    assert first.keys == again.keys
    exact = solve_tiles(conditions, ["random", "binary"], lambda g: DEVICE, vectors=3, engine="exact")
    np.testing.assert_allclose(first.currents, exact.currents, rtol=1e-7)


def test_failed_tile_keeps_finished_ones(tmp_path):
    from spicecross.errors import SimulationError

    class HalfFailing:
        def run_each(self, netlists):
            yield 0, SimulationError("ngspice run failed")

    with pytest.raises(CalibrationError, match="1 of 1 tile sweeps failed"):
        solve_tiles(
            TileConditions(2, 2, 1.0, 1.0),
            ["random"],
            lambda g: DEVICE,
            vectors=2,
            executor=HalfFailing(),
            folder=tmp_path,
        )
