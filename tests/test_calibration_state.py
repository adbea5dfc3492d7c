"""State maps of user models: a resistance parameter and a dynamic model with a state capacitor."""

from pathlib import Path

import numpy as np
import pytest

from spicecross.calibration import (
    DeviceModelError,
    NetlistExecutor,
    StateMapError,
    build_state_map,
    fit_device_law,
    hold_state_node,
    load_state_device,
    sweep_device,
)
from spicecross.calibration.state import HOLD_SOURCE, floating_nodes
from spicecross.crossbar.spec import CrossbarSpec
from spicecross.sim.solve import solve

DATA = Path(__file__).parent / "data" / "devices"


@pytest.fixture(scope="module")
def executor():
    with NetlistExecutor(1, timeout=120) as ex:
        yield ex


def test_floating_nodes_of_dynamic_model():
    assert floating_nodes(load_state_device(DATA / "vcm_dynamic.lib")) == ["xs"]
    assert floating_nodes(load_state_device(DATA / "state_resistor.lib")) == []


def test_hold_state_node_adds_source():
    device = hold_state_node(load_state_device(DATA / "vcm_dynamic.lib"), "xs", "x0")
    lines = device.subckt_text.lower().splitlines()
    hold = next(i for i, line in enumerate(lines) if line.startswith(HOLD_SOURCE))
    assert lines[hold] == f"{HOLD_SOURCE} xs 0 {{x0}}"
    assert lines[hold + 1].startswith(".ends")
    assert floating_nodes(device) == []


def test_hold_state_node_rejects_unknown_node():
    with pytest.raises(DeviceModelError, match="not a node"):
        hold_state_node(load_state_device(DATA / "vcm_dynamic.lib"), "nope", "x0")


@pytest.mark.ngspice
def test_resistance_parameter_map(executor):
    device = load_state_device(DATA / "state_resistor.lib")
    smap = build_state_map(device, "rf", [1e3, 1e7], executor, tolerance=1e-3)
    targets = np.array([[1e-6, 1e-5], [5e-5, 2e-4]])
    spec = CrossbarSpec(targets, device=smap.device_for(targets))
    # One device per run: read each one alone at V_ref through an ideal crossbar row.
    result = solve(spec, np.eye(2) * 0.25, engine="ngspice")
    read = np.stack([result.currents[0], result.currents[1]]) / 0.25
    np.testing.assert_allclose(read, targets, rtol=2e-3)
    assert smap.max_error <= 1e-3


@pytest.mark.ngspice
def test_dynamic_model_map_with_held_state(executor):
    device = load_state_device(DATA / "vcm_dynamic.lib")
    smap = build_state_map(device, "x0", [0.0, 1.0], executor, scale="linear", state_node="xs")
    assert smap.hold["element"] == HOLD_SOURCE
    # The read current is (gmin + (gmax - gmin)·x0)·v0·sinh(V_ref/v0): the map must invert it.
    x0 = smap.param_for([1e-5, 5e-5])
    expected = (np.array([1e-5, 5e-5]) * 0.25 / (0.3 * np.sinh(0.25 / 0.3)) - 1e-6) / (1e-4 - 1e-6)
    np.testing.assert_allclose(x0, expected, rtol=2e-3, atol=1e-5)
    sweep = sweep_device(smap.device, np.geomspace(5e-6, 5e-5, 4), executor, state_map=smap)
    fit = fit_device_law(sweep)
    assert fit.chosen.name == "sinh"
    assert fit.law.params["v0"] == pytest.approx(0.3, rel=1e-6)


@pytest.mark.ngspice
def test_dynamic_model_without_hold_is_rejected(executor):
    device = load_state_device(DATA / "vcm_dynamic.lib")
    with pytest.raises(DeviceModelError, match="state_node"):
        build_state_map(device, "x0", [0.0, 1.0], executor, scale="linear")


@pytest.mark.ngspice
def test_target_outside_map_range(executor):
    device = load_state_device(DATA / "state_resistor.lib")
    smap = build_state_map(device, "rf", [1e4, 1e6], executor, points=9, rounds=2, tolerance=1e-2)
    with pytest.raises(StateMapError, match="outside the range"):
        smap.param_for([1e-2])
