"""Device calibration against real ngspice sweeps: law fits, table fallback and bad models."""

from pathlib import Path

import numpy as np
import pytest

from spicecross.calibration import (
    DeviceModelError,
    FitResidualWarning,
    NetlistExecutor,
    fit_device_law,
    fit_table,
    load_state_device,
    sweep_device,
)
from spicecross.calibration.device import law_residual, sweep_grid
from spicecross.devices import builtin_device, load_subckt_device
from spicecross.devices.laws import nonlinearity_of_conductance

DATA = Path(__file__).parent / "data" / "devices"
TARGETS = np.geomspace(5e-6, 5e-5, 5)


@pytest.fixture(scope="module")
def executor():
    with NetlistExecutor(1, timeout=120) as ex:
        yield ex


def test_sweep_grid_contains_read_voltage():
    grid = sweep_grid(0.25, -0.5, 0.5, 0.03)
    assert np.isclose(grid, 0.25, atol=1e-12).any()
    assert grid[0] <= -0.5
    assert grid[-1] >= 0.5


@pytest.mark.ngspice
@pytest.mark.parametrize(
    "name, params, key",
    [
        ("power_law", {"n": 2.7}, "n"),
        ("sinh", {"v0": 0.15}, "v0"),
        ("poole_frenkel", {"d_eps": 3e-17}, "d_eps"),
    ],
)
def test_fit_recovers_builtin_parameters(executor, name, params, key):
    sweep = sweep_device(builtin_device(name, **params), TARGETS, executor)
    np.testing.assert_allclose(sweep.conductances, TARGETS, rtol=1e-6)
    fit = fit_device_law(sweep)
    assert fit.chosen.name == name
    assert fit.law.params[key] == pytest.approx(params[key], rel=1e-6)
    assert fit.residual < 1e-6
    assert not fit.fallback


@pytest.mark.ngspice
def test_fit_recovers_conductance_dependent_n(executor):
    coeffs = [2.0, 0.15, 0.12]
    g = np.geomspace(1e-6, 5e-4, 9)
    device = builtin_device("power_law", n=nonlinearity_of_conductance(g[None, :], coeffs, 5e-4))
    fit = fit_device_law(sweep_device(device, g, executor), laws=("power_law", "power_law_g"))
    assert fit.chosen.name == "power_law_g"
    np.testing.assert_allclose(fit.law.n_coeffs, coeffs, atol=1e-5)
    assert fit.residual < 1e-6


@pytest.mark.ngspice
def test_saturating_device_falls_back_to_table(executor):
    sweep = sweep_device(load_subckt_device(DATA / "saturating.lib"), TARGETS, executor)
    fit = fit_device_law(sweep, max_residual=0.01)
    assert fit.fallback
    assert fit.chosen.name == "table"
    assert all(fit.candidates[name].residual > 0.01 for name in ("power_law", "sinh", "poole_frenkel"))
    assert fit.residual < 1e-3
    table = np.asarray(fit.law.table_i)
    assert np.all(np.diff(table) >= 0)


@pytest.mark.ngspice
def test_residual_above_bound_warns(executor):
    # Each state has its own n, so neither one shared n nor one table shape fits every state.
    n = np.array([[2.0, 2.5, 3.0]])
    sweep = sweep_device(builtin_device("power_law", n=n), [1e-5, 2e-5, 4e-5], executor)
    with pytest.warns(FitResidualWarning, match="above the bound"):
        fit = fit_device_law(sweep, laws="power_law", max_residual=1e-3)
    assert fit.chosen.name == "table"
    assert fit.residual > 1e-3


def test_table_of_exact_curves_is_exact():
    from spicecross.calibration.device import DeviceSweep
    from spicecross.devices.laws import sinh_current

    v = sweep_grid(0.25, -0.5, 0.5, 0.01)
    g = np.array([1e-5, 3e-5])
    currents = sinh_current(v[None, :], g[:, None], v0=0.2)
    sweep = DeviceSweep("sinh", v, currents, g, g, [{}, {}], 0.25)
    table = fit_table(sweep, max_knots=len(v))
    assert law_residual(table.law, sweep) < 1e-12


@pytest.mark.ngspice
def test_unknown_function_is_named_error(executor):
    device = load_subckt_device(DATA / "unknown_function.lib")
    with pytest.raises(DeviceModelError, match="does not define") as info:
        sweep_device(device, [1e-4], executor)
    assert "softplus" in str(info.value)


def test_floating_state_node_is_named_error(executor):
    device = load_state_device(DATA / "vcm_dynamic.lib")
    with pytest.raises(DeviceModelError, match="no DC path") as info:
        sweep_device(device, [1e-5], executor, states=[{"x0": 0.5}])
    assert "state_node = 'xs'" in str(info.value)


def test_device_without_conductance_parameter_needs_state_map(executor):
    device = load_state_device(DATA / "vcm_dynamic.lib")
    with pytest.raises(ValueError, match="state map"):
        sweep_device(device, [1e-5], executor)
