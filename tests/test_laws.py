import numpy as np
import pytest
import torch

from spicecross.devices import LAWS, builtin_device
from spicecross.devices.laws import BOLTZMANN, ELEMENTARY_CHARGE, poole_frenkel_c, sinh_g0

V = np.linspace(-0.5, 0.5, 41)
CASES = [("linear", {}), ("power_law", {"n": 2.0}), ("power_law", {"n": 3.0}), ("sinh", {"v0": 0.15}),
         ("poole_frenkel", {"d_eps": 2e-17, "temperature": 300.0}),
         ("poole_frenkel", {"d_eps": 5e-18, "temperature": 350.0})]


@pytest.mark.parametrize("name, params", CASES)
def test_chord_conductance_at_vref(name, params):
    g = np.array([1e-6, 1e-4, 5e-4])
    i = LAWS[name].current(np.full(3, 0.25), g, **params)
    np.testing.assert_allclose(i / 0.25, g, rtol=1e-12)


@pytest.mark.parametrize("name, params", CASES)
def test_odd_symmetry(name, params):
    law = LAWS[name]
    np.testing.assert_allclose(law.current(-V, 1e-4, **params), -law.current(V, 1e-4, **params), rtol=1e-14)


def test_power_law_matches_definition():
    # I = sign(V)·V_ref·G·(|V|/V_ref)^log2(n), written out independently.
    n, g, v_ref = 2.7, 2e-4, 0.25
    expected = np.sign(V) * v_ref * g * (np.abs(V) / v_ref) ** (np.log(n) / np.log(2))
    np.testing.assert_allclose(LAWS["power_law"].current(V, g, n=n), expected, rtol=1e-13, atol=1e-20)


def test_power_law_nonlinearity_is_n():
    law = LAWS["power_law"]
    ratio = law.current(np.array([0.5]), 1e-4, n=3.2) / law.current(np.array([0.25]), 1e-4, n=3.2)
    assert ratio[0] == pytest.approx(3.2, rel=1e-12)


def test_sinh_matches_definition():
    g, v0 = 1e-4, 0.2
    g0 = sinh_g0(g, v0=v0)
    np.testing.assert_allclose(LAWS["sinh"].current(V, g, v0=v0), g0 * v0 * np.sinh(V / v0), rtol=1e-13)


def test_poole_frenkel_matches_definition():
    g, d_eps, temp = 1e-4, 2e-17, 300.0
    c = poole_frenkel_c(g, d_eps=d_eps, temperature=temp)
    q, kb = ELEMENTARY_CHARGE, BOLTZMANN
    expected = np.sign(V) * c * np.abs(V) * np.exp(q * np.sqrt(q * np.abs(V) / (np.pi * d_eps)) / (kb * temp))
    got = LAWS["poole_frenkel"].current(V, g, d_eps=d_eps, temperature=temp)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-20)


@pytest.mark.parametrize("name, params", CASES)
def test_slope_matches_finite_difference(name, params):
    law = LAWS[name]
    v = V[np.abs(V) > 0.02]
    h = 1e-6
    numeric = (law.current(v + h, 1e-4, **params) - law.current(v - h, 1e-4, **params)) / (2 * h)
    np.testing.assert_allclose(law.slope(v, 1e-4, **params), numeric, rtol=1e-6)


@pytest.mark.parametrize("name, params", CASES)
def test_slope_finite_at_zero(name, params):
    assert np.all(np.isfinite(LAWS[name].slope(np.zeros(1), 1e-4, **params)))


@pytest.mark.parametrize("name, params", CASES)
def test_torch_matches_numpy(name, params):
    law = LAWS[name]
    got = law.current(torch.tensor(V, dtype=torch.float64), 1e-4, **params).numpy()
    np.testing.assert_allclose(got, law.current(V, 1e-4, **params), rtol=1e-14, atol=1e-22)


@pytest.mark.parametrize("name, params", CASES)
def test_torch_gradcheck(name, params):
    law = LAWS[name]
    v = torch.tensor([-0.4, -0.1, 0.07, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([1e-4, 2e-4, 3e-4, 4e-4, 5e-4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, g: law.current(v, g, **params) * 1e4, (v, g), eps=1e-7, atol=1e-7)


@pytest.mark.parametrize("name, params, message", [
    ("power_law", {"n": 1.5}, "n=1.5"),
    ("power_law", {"n": float("nan")}, "not finite"),
    ("sinh", {"v0": 0.0}, "v0=0.0"),
    ("poole_frenkel", {"temperature": -3.0}, "temperature=-3.0"),
    ("power_law", {"bogus": 1.0}, "unknown parameter"),
])
def test_bad_law_parameters(name, params, message):
    with pytest.raises(ValueError, match=message):
        builtin_device(name, **params)


def test_unknown_device_name():
    with pytest.raises(ValueError, match="built-in devices are"):
        builtin_device("memristor9000")


def test_bad_read_voltage():
    with pytest.raises(ValueError, match="v_ref"):
        builtin_device("linear", v_ref=0.0)
