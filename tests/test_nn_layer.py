"""Crossbar layers and networks: mapping, surrogate forward pass, gradients, chip nonidealities, files."""

import numpy as np
import pytest
import torch

from spicecross.crossbar.mapping import differential_output, map_differential
from spicecross.nn import (
    ConfigurationError,
    CrossbarConfig,
    CrossbarLinear,
    CrossbarMLP,
    DeviceConfig,
    ModelConfigError,
    NetworkConfig,
    VariationConfig,
    load_model,
    save_model,
)
from spicecross.nn.chip import STUCK_OFF, STUCK_ON, quantize_currents
from spicecross.nn.relaxation import truncated_ir_drop
from spicecross.surrogates import DeviceOnlySurrogate, IdealSurrogate, IRDropSurrogate

N_OF_G = DeviceConfig(n_coeffs=(2.0, 0.15, 0.12))


def make_layer(crossbar, surrogate_cls=DeviceOnlySurrogate, inputs=7, outputs=4, **kwargs):
    law = crossbar.device.fitted_law(crossbar.v_ref)
    surrogate = surrogate_cls(law, crossbar.wiring, **kwargs)
    return CrossbarLinear(inputs, outputs, crossbar, surrogate, generator=torch.Generator().manual_seed(3))


def test_linear_ideal_layer_equals_xw_plus_b():
    crossbar = CrossbarConfig(device=DeviceConfig(law="linear"))
    layer = make_layer(crossbar, IdealSurrogate)
    x = torch.rand(5, 7, dtype=torch.float64)
    out = layer(x)
    torch.testing.assert_close(out.y, layer.forward_ideal(x), rtol=1e-12, atol=1e-12)


def test_mapping_matches_map_differential():
    crossbar = CrossbarConfig(g_off=2e-5, g_on=9e-5, device=N_OF_G)
    layer = make_layer(crossbar)
    g, k_g = layer.target_conductances()
    reference = map_differential(layer.augmented_weight().detach().numpy(), 2e-5, 9e-5)
    np.testing.assert_allclose(g.detach().numpy(), reference.conductances, rtol=1e-12)
    assert float(k_g.detach()) == pytest.approx(reference.k_g, rel=1e-12)


def test_output_is_differential_current_over_kv_kg():
    crossbar = CrossbarConfig(device=N_OF_G)
    layer = make_layer(crossbar)
    x = torch.rand(3, 7, dtype=torch.float64)
    out = layer(x)
    expected = differential_output(out.currents.detach().numpy(), crossbar.k_v, layer.k_g())
    np.testing.assert_allclose(out.y.detach().numpy(), expected, rtol=1e-12)


def test_power_ideal_wires_equals_sum_vi():
    crossbar = CrossbarConfig(device=N_OF_G)
    layer = make_layer(crossbar)
    x = torch.rand(4, 7, dtype=torch.float64)
    out = layer(x)
    g, _ = layer.device_conductances()
    v = layer.read_voltages(x)
    law = crossbar.device.fitted_law(crossbar.v_ref)
    device_currents = law.current(v[:, :, None].expand(-1, -1, g.shape[1]), g[None])
    expected = torch.sum(torch.abs(v[:, :, None] * device_currents), dim=(1, 2))
    torch.testing.assert_close(out.power, expected, rtol=1e-12, atol=0)


def test_tiled_layer_equals_single_tile_with_ideal_wires():
    big = CrossbarConfig(device=N_OF_G)
    small = CrossbarConfig(device=N_OF_G, tile_rows=3, tile_cols=4)
    a, b = make_layer(big, inputs=8, outputs=5), make_layer(small, inputs=8, outputs=5)
    assert len(b.tiles) == 3 * 3
    x = torch.rand(6, 8, dtype=torch.float64)
    torch.testing.assert_close(a(x).y, b(x).y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a(x).power, b(x).power, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "surrogate_cls, kwargs", [(DeviceOnlySurrogate, {}), (IRDropSurrogate, {"sweeps": 3, "damping": 0.8})]
)
def test_layer_gradcheck_float64(surrogate_cls, kwargs):
    crossbar = CrossbarConfig(device=N_OF_G, r_word=2.0, r_bit=2.0, tile_rows=4, tile_cols=4)
    layer = make_layer(crossbar, surrogate_cls, inputs=5, outputs=3, **kwargs)
    x = (torch.rand(2, 5, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)

    def f(x, weight, bias):
        out = torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (x,))
        return out.y, out.power

    weight = layer.weight.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, w, b: f(x, w, b)[0], (x, weight, bias), eps=1e-7, atol=1e-5)
    assert torch.autograd.gradcheck(
        lambda x, w, b: f(x, w, b)[1] * 1e3, (x, weight, bias), eps=1e-7, atol=1e-6
    )


def test_truncated_relaxation_keeps_values():
    crossbar = CrossbarConfig(device=N_OF_G, r_word=2.0, r_bit=2.0)
    layer = make_layer(crossbar, IRDropSurrogate, inputs=20, outputs=10, sweeps=12, damping=0.8)
    x = torch.rand(4, 20, dtype=torch.float64)
    g, _ = layer.device_conductances()
    v = layer.read_voltages(x)
    full = layer.surrogate(v, g)
    truncated = truncated_ir_drop(layer.surrogate, v, g, 2)
    torch.testing.assert_close(truncated.currents, full.currents, rtol=1e-12, atol=0)
    torch.testing.assert_close(truncated.power, full.power, rtol=1e-12, atol=0)


def test_chip_draw_is_seeded_and_applied():
    variation = VariationConfig(sigma=0.2, p_stuck_on=0.1, p_stuck_off=0.1, seed=5)
    crossbar = CrossbarConfig(device=N_OF_G, variation=variation)
    a, b = make_layer(crossbar, inputs=30, outputs=20), make_layer(crossbar, inputs=30, outputs=20)
    assert torch.equal(a.chip_factor, b.chip_factor)
    assert torch.equal(a.chip_stuck, b.chip_stuck)
    g, _ = a.device_conductances()
    stuck = a.chip_stuck
    assert torch.all(g[stuck == STUCK_ON] == crossbar.g_on)
    assert torch.all(g[stuck == STUCK_OFF] == crossbar.g_off)
    fraction_on = float((stuck == STUCK_ON).double().mean())
    assert 0.05 < fraction_on < 0.15
    other = make_layer(
        CrossbarConfig(device=N_OF_G, variation=VariationConfig(sigma=0.2, seed=6)), inputs=30, outputs=20
    )
    assert not torch.equal(a.chip_factor, other.chip_factor)


def test_adc_quantizes_with_straight_through_gradient():
    currents = torch.tensor([[0.0, 0.26, 0.74, 1.3]], dtype=torch.float64, requires_grad=True)
    q = quantize_currents(currents, bits=2, full_scale=0.9)
    np.testing.assert_allclose(q.detach().numpy(), [[0.0, 0.3, 0.6, 0.9]], rtol=1e-12)
    q.sum().backward()
    np.testing.assert_allclose(currents.grad.numpy(), np.ones((1, 4)))


@pytest.mark.parametrize(
    "g_off, g_on", [(5e-4, 1e-4), (1e-4, 1e-4), (0.0, 1e-4), (-1e-5, 1e-4), (1e-4, float("nan"))]
)
def test_invalid_power_level_raises(g_off, g_on):
    with pytest.raises(ConfigurationError, match="G_o"):
        CrossbarConfig(g_off=g_off, g_on=g_on)


def test_model_file_roundtrip(tmp_path):
    crossbar = CrossbarConfig(
        device=N_OF_G, r_word=2.0, r_bit=2.0, variation=VariationConfig(sigma=0.1, adc_bits=6, seed=2)
    )
    surrogate = IRDropSurrogate(crossbar.device.fitted_law(0.25), crossbar.wiring, sweeps=4)
    model = CrossbarMLP(NetworkConfig((6, 4, 3)), crossbar, surrogate, seed=1)
    with torch.no_grad():
        model.layers[0].surrogate.log_scale_word.fill_(0.1)
    path = save_model(model, tmp_path / "m.pt", metadata={"dataset": "digits"})
    loaded = load_model(path, expected=model.config())
    x = torch.rand(3, 6, dtype=torch.float64)
    torch.testing.assert_close(loaded.model(x).logits, model(x).logits, rtol=1e-12, atol=0)
    assert loaded.metadata["dataset"] == "digits"
    assert float(loaded.model.layers[0].surrogate.log_scale_word) == pytest.approx(0.1)


def test_model_file_from_other_configuration_raises(tmp_path):
    crossbar = CrossbarConfig(device=N_OF_G)
    surrogate = DeviceOnlySurrogate(crossbar.device.fitted_law(0.25))
    model = CrossbarMLP(NetworkConfig((6, 4, 3)), crossbar, surrogate)
    path = save_model(model, tmp_path / "m.pt")
    other = CrossbarMLP(
        NetworkConfig((6, 4, 3)), CrossbarConfig(g_off=1e-5, g_on=5e-5, device=N_OF_G), surrogate
    )
    with pytest.raises(ModelConfigError, match="g_on"):
        load_model(path, expected=other.config())


def test_non_model_file_raises(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelConfigError, match="not a spicecross model"):
        load_model(path)
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ModelConfigError, match="something-else"):
        load_model(tmp_path / "other.pt")


@pytest.mark.parametrize("name, content, description", [
    ("report.json", b'{"config": {"levels": []}}\n', "starts like a JSON file"),
    ("random.pt", np.random.default_rng(0).bytes(4096), "damaged or truncated"),
    ("empty.pt", b"", "it is empty"),
])
def test_unreadable_model_file_raises(tmp_path, name, content, description):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelConfigError) as caught:
        load_model(path)
    message = str(caught.value)
    assert f"{path} is not a spicecross model file" in message
    assert description in message
    assert "models/*.pt" in message
    assert "weights_only" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_truncated_model_file_raises(tmp_path):
    crossbar = CrossbarConfig(device=N_OF_G)
    surrogate = DeviceOnlySurrogate(crossbar.device.fitted_law(0.25))
    model = CrossbarMLP(NetworkConfig((6, 4, 3)), crossbar, surrogate)
    whole = save_model(model, tmp_path / "whole.pt").read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ModelConfigError, match="damaged or truncated"):
        load_model(path)


def test_model_path_is_folder_raises(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder, not a model file"):
        load_model(tmp_path)
