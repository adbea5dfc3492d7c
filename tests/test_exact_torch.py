"""The differentiable exact solver: forward values and implicit-function gradients."""

import numpy as np
import pytest
import torch

from spicecross.crossbar.spec import CrossbarSpec
from spicecross.devices import builtin_device
from spicecross.sim.exact import NodalSystem, solve_exact
from spicecross.sim.exact_torch import nodal_system, solve_exact_torch

RNG = np.random.default_rng(5)
DEVICES = {
    "linear": builtin_device("linear"),
    "power_law": builtin_device("power_law", n=2.7),
    "sinh": builtin_device("sinh", v0=0.2),
    "poole_frenkel": builtin_device("poole_frenkel"),
}
#: Conductance and current units of the gradcheck wrapper, so that its inputs and
#: outputs are of order 1 and gradcheck's absolute tolerance means something.
G_UNIT = 1e-4
I_UNIT = 1e-4


def make_spec(law: str, drive: str = "west", shape=(3, 4)) -> CrossbarSpec:
    g = RNG.uniform(1e-5, 1e-4, shape)
    return CrossbarSpec(g, device=DEVICES[law], r_word=2.0, r_bit=3.0, r_source=10.0, r_sense=5.0,
                        drive=drive)


@pytest.mark.parametrize("law", DEVICES)
@pytest.mark.parametrize("drive", ["west", "both"])
def test_forward_equals_solve_exact(law, drive):
    spec = make_spec(law, drive)
    v = RNG.uniform(-0.5, 0.5, (5, 3))
    out = solve_exact_torch(spec, torch.tensor(v), torch.tensor(spec.conductances))
    expected = solve_exact(spec, v)
    np.testing.assert_allclose(out["currents"].numpy(), expected.currents, rtol=1e-10, atol=1e-20)
    np.testing.assert_allclose(out["power"].numpy(), expected.power, rtol=1e-10, atol=1e-20)


@pytest.mark.parametrize("law", DEVICES)
def test_gradcheck_voltages_and_conductances(law):
    spec = make_spec(law, drive="both" if law == "sinh" else "west")
    v = torch.tensor(RNG.uniform(-0.5, 0.5, (2, 3)), requires_grad=True)
    g = torch.tensor(spec.conductances / G_UNIT, requires_grad=True)

    def scaled(voltages, conductances):
        out = solve_exact_torch(spec, voltages, conductances * G_UNIT)
        return out["currents"] / I_UNIT, out["power"] / I_UNIT

    # Forward results are accurate to about 1e-13 relative, so central differences with
    # eps = 1e-6 carry an error of about 1e-7, and atol is 1e-6 on outputs of order 1.
    assert torch.autograd.gradcheck(scaled, (v, g), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_gradient_of_one_input_only():
    spec = make_spec("sinh")
    v = torch.tensor(RNG.uniform(0, 0.5, (3, 3)), requires_grad=True)
    g = torch.tensor(spec.conductances)
    solve_exact_torch(spec, v, g)["currents"].sum().backward()
    assert v.grad is not None
    assert g.grad is None
    assert torch.all(v.grad > 0)  # more input voltage, more bit-line current


def test_power_gradient_is_positive_in_conductance():
    spec = make_spec("power_law")
    v = torch.tensor(RNG.uniform(0.1, 0.5, (2, 3)))
    g = torch.tensor(spec.conductances, requires_grad=True)
    solve_exact_torch(spec, v, g)["power"].sum().backward()
    assert torch.all(g.grad > 0)


def test_float32_inputs_give_float32_outputs():
    spec = make_spec("sinh")
    v = torch.tensor(RNG.uniform(0, 0.5, (2, 3)), dtype=torch.float32, requires_grad=True)
    g = torch.tensor(spec.conductances, dtype=torch.float32, requires_grad=True)
    out = solve_exact_torch(spec, v, g)
    assert out["currents"].dtype == torch.float32
    assert out["power"].dtype == torch.float32
    out["power"].sum().backward()
    assert v.grad.dtype == torch.float32
    assert g.grad.dtype == torch.float32
    expected = solve_exact(CrossbarSpec(g.detach().double().numpy(), device=spec.device, r_word=2.0,
                                        r_bit=3.0, r_source=10.0, r_sense=5.0), v.detach().double().numpy())
    np.testing.assert_allclose(out["currents"].detach().numpy(), expected.currents, rtol=1e-6)


def test_conductances_of_spec_are_ignored():
    spec = make_spec("linear")
    g = RNG.uniform(1e-5, 1e-4, (3, 4))
    v = RNG.uniform(0, 0.5, (2, 3))
    out = solve_exact_torch(spec, torch.tensor(v), torch.tensor(g))
    expected = solve_exact(CrossbarSpec(g, r_word=2.0, r_bit=3.0, r_source=10.0, r_sense=5.0), v)
    np.testing.assert_allclose(out["currents"].numpy(), expected.currents, rtol=1e-10)


def test_nodal_system_cached_by_wiring():
    spec = make_spec("sinh")
    other = CrossbarSpec(spec.conductances * 2, device=spec.device, r_word=2.0, r_bit=3.0, r_source=10.0,
                         r_sense=5.0)
    assert nodal_system(spec) is nodal_system(other)
    rewired = CrossbarSpec(spec.conductances, device=spec.device, r_word=2.5, r_bit=3.0, r_source=10.0,
                           r_sense=5.0)
    assert nodal_system(rewired) is not nodal_system(spec)


def test_nodal_system_accepted():
    spec = make_spec("poole_frenkel")
    system = NodalSystem(spec)
    v = torch.tensor(RNG.uniform(0, 0.5, (2, 3)))
    out = solve_exact_torch(system, v, torch.tensor(spec.conductances))
    np.testing.assert_allclose(out["currents"].numpy(), solve_exact(spec, v.numpy()).currents, rtol=1e-10)


@pytest.mark.parametrize("v_shape, g_shape, message", [
    ((3,), (3, 4), r"expected \(batch, 3\)"),
    ((2, 4), (3, 4), r"expected \(batch, 3\)"),
    ((2, 3), (4, 3), r"expected \(3, 4\)"),
])
def test_bad_shapes_rejected(v_shape, g_shape, message):
    with pytest.raises(ValueError, match=message):
        solve_exact_torch(make_spec("linear"), torch.zeros(v_shape, dtype=torch.float64),
                          torch.full(g_shape, 1e-4, dtype=torch.float64))


def test_non_positive_conductance_rejected():
    g = torch.full((3, 4), 1e-4, dtype=torch.float64)
    g[1, 2] = 0.0
    with pytest.raises(ValueError, match=r"conductances\[1, 2\] = 0.0 S is not positive"):
        solve_exact_torch(make_spec("linear"), torch.zeros((1, 3), dtype=torch.float64), g)
