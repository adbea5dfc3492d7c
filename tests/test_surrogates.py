import numpy as np
import pytest
import torch

from spicecross.crossbar.spec import CrossbarSpec
from spicecross.devices import builtin_device
from spicecross.sim.exact import solve_exact
from spicecross.surrogates import DeviceOnlySurrogate, FittedLaw, IdealSurrogate, IRDropSurrogate, Wiring
from spicecross.surrogates.io import load_surrogate, save_surrogate

RNG = np.random.default_rng(3)


def nrmse(a, b):
    return np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2))


def test_ideal_is_ohms_law():
    g = RNG.uniform(1e-5, 1e-4, (5, 4))
    v = RNG.uniform(0, 0.5, (3, 5))
    out = IdealSurrogate(FittedLaw("linear"))(torch.tensor(v), torch.tensor(g))
    np.testing.assert_allclose(out.currents.numpy(), v @ g, rtol=1e-12)
    np.testing.assert_allclose(out.power.numpy(), np.sum(v[:, :, None] ** 2 * g[None], axis=(1, 2)), rtol=1e-12)


def test_device_only_matches_exact_without_wires():
    g = RNG.uniform(1e-5, 1e-4, (6, 5))
    v = RNG.uniform(0, 0.5, (4, 6))
    exact = solve_exact(CrossbarSpec(g, device=builtin_device("sinh", v0=0.2)), v)
    out = DeviceOnlySurrogate(FittedLaw("sinh", {"v0": 0.2}))(torch.tensor(v), torch.tensor(g))
    np.testing.assert_allclose(out.currents.numpy(), exact.currents, rtol=1e-10)
    np.testing.assert_allclose(out.power.numpy(), exact.power, rtol=1e-10)


@pytest.mark.parametrize("r_wire", [0.5, 2.0])
def test_ir_drop_surrogate_close_to_exact(r_wire):
    g = RNG.uniform(5e-6, 5e-5, (32, 32))
    v = RNG.uniform(0, 0.5, (8, 32))
    spec = CrossbarSpec(g, device=builtin_device("power_law", n=2.8), r_word=r_wire, r_bit=r_wire,
                        r_source=3.0, r_sense=2.0)
    exact = solve_exact(spec, v)
    law = FittedLaw("power_law", {"n": 2.8})
    out = IRDropSurrogate(law, Wiring.from_spec(spec), sweeps=12)(torch.tensor(v), torch.tensor(g))
    device_only = DeviceOnlySurrogate(law)(torch.tensor(v), torch.tensor(g))
    assert nrmse(out.currents.detach().numpy(), exact.currents) < 1e-3
    assert nrmse(out.power.detach().numpy(), exact.power) < 1e-3
    assert nrmse(device_only.currents.numpy(), exact.currents) > 1e-2


def test_ir_drop_with_zero_sweeps_is_device_only():
    g = torch.tensor(RNG.uniform(1e-5, 1e-4, (4, 3)))
    v = torch.tensor(RNG.uniform(0, 0.5, (2, 4)))
    law = FittedLaw("power_law", {"n": 2.5})
    a = IRDropSurrogate(law, Wiring(r_word=5.0, r_bit=5.0), sweeps=0)(v, g).currents
    b = DeviceOnlySurrogate(law)(v, g).currents
    torch.testing.assert_close(a, b)


def test_ir_drop_gradcheck():
    law = FittedLaw("power_law", n_coeffs=[2.0, 0.15, 0.12])
    model = IRDropSurrogate(law, Wiring(r_word=2.0, r_bit=3.0, r_source=1.0, r_sense=1.0), sweeps=4)
    v = torch.tensor(RNG.uniform(0.05, 0.5, (2, 3)), requires_grad=True)
    g = torch.tensor(RNG.uniform(1e-5, 1e-4, (3, 4)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, g: model(v, g).currents * 1e4, (v, g), eps=1e-8, atol=1e-6)


def test_conductance_dependent_nonlinearity():
    law = FittedLaw("power_law", n_coeffs=[2.0, 0.15, 0.12], n_g_ref=5e-4)
    g = torch.tensor([5e-4, 5e-5, 5e-6], dtype=torch.float64)
    ratio = law.current(torch.full((3,), 0.5, dtype=torch.float64), g) / law.current(
        torch.full((3,), 0.25, dtype=torch.float64), g)
    np.testing.assert_allclose(ratio.numpy(), [2.0, 2.27, 2.78], rtol=1e-12)


def test_save_load_round_trip(tmp_path):
    law = FittedLaw("power_law", {"n": 2.6}, residual=1e-4)
    model = IRDropSurrogate(law, Wiring(r_word=np.full((3, 2), 2.0), r_bit=1.0), sweeps=5, damping=0.9)
    with torch.no_grad():
        model.log_scale_word.fill_(0.1)
    path = save_surrogate(model, tmp_path / "s", provenance={"sweeps": "abc"})
    loaded, provenance = load_surrogate(path)
    v, g = torch.rand(2, 3, dtype=torch.float64) * 0.5, torch.full((3, 2), 1e-4, dtype=torch.float64)
    torch.testing.assert_close(loaded(v, g).currents, model(v, g).currents)
    assert provenance == {"sweeps": "abc"}
    assert loaded.sweeps == 5


def test_load_rejects_other_format(tmp_path):
    (tmp_path / "x.json").write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a spicecross surrogate"):
        load_surrogate(tmp_path / "x.json")


def test_bad_surrogate_arguments():
    with pytest.raises(ValueError, match="damping"):
        IRDropSurrogate(FittedLaw("linear"), Wiring(), damping=0.0)
    with pytest.raises(ValueError, match="unknown law"):
        FittedLaw("magic")
