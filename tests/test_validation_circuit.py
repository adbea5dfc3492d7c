"""Circuit-level validation: crossbar networks solved in ngspice next to their surrogates."""

import json

import numpy as np
import pytest
import torch

from spicecross.nn import (
    CrossbarConfig,
    CrossbarMLP,
    DeviceConfig,
    NetworkConfig,
    VariationConfig,
    save_model,
)
from spicecross.surrogates import DeviceOnlySurrogate, IRDropSurrogate
from spicecross.validation import ValidationExecutor, nrmse, tops_per_watt, validate_circuit

pytestmark = pytest.mark.ngspice
N_OF_G = DeviceConfig(n_coeffs=(2.0, 0.15, 0.12))


@pytest.fixture(scope="module")
def executor():
    with ValidationExecutor(2) as ex:
        yield ex


def trained_tiny_network(crossbar, surrogate, steps=60):
    """A 6-5-3 network trained for a few steps through its surrogate on a toy problem."""
    torch.manual_seed(0)
    model = CrossbarMLP(NetworkConfig((6, 5, 3)), crossbar, surrogate, seed=0)
    x = torch.rand(64, 6, dtype=torch.float64)
    y = torch.argmax(x[:, :3], dim=1)
    optimizer = torch.optim.Adam(model.weight_parameters(), lr=0.05)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x).logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, x.numpy(), y.numpy()


def test_trained_layer_agrees_with_ngspice(executor):
    crossbar = CrossbarConfig(g_off=1e-5, g_on=5e-5, device=N_OF_G, r_word=2.0, r_bit=2.0)
    law = crossbar.device.fitted_law(crossbar.v_ref)
    model, x, y = trained_tiny_network(crossbar, IRDropSurrogate(law, crossbar.wiring, sweeps=8))
    result = validate_circuit(model, x[:10], y[:10], executor)
    assert result.ngspice_version.startswith("ngspice-")
    for layer in result.layers:
        assert layer.nrmse_current < 1e-5
        assert layer.nrmse_output < 1e-4
    np.testing.assert_allclose(result.power_spice, result.power_surrogate, rtol=1e-5)
    np.testing.assert_array_equal(result.logits_spice.argmax(1), result.logits_surrogate.argmax(1))
    breakdown = sum(sum(layer.breakdown_spice.values()) for layer in result.layers)
    np.testing.assert_allclose(breakdown, result.power_spice, rtol=1e-6)


def test_spice_power_ideal_wires_equals_sum_vi(executor):
    crossbar = CrossbarConfig(g_off=1e-5, g_on=5e-5, device=N_OF_G)
    model = CrossbarMLP(
        NetworkConfig((5, 3)), crossbar, DeviceOnlySurrogate(crossbar.device.fitted_law(0.25))
    )
    x = np.random.default_rng(1).uniform(size=(4, 5))
    result = validate_circuit(model, x, np.zeros(4, dtype=int), executor)
    tile = result.layers[0].tiles[0]
    law = crossbar.device.fitted_law(0.25)
    v = tile.voltages[:, :, None]
    expected = np.sum(
        np.abs(v * law.current(np.broadcast_to(v, (4,) + tile.conductances.shape), tile.conductances)),
        axis=(1, 2),
    )
    np.testing.assert_allclose(result.power_spice, expected, rtol=1e-6)


def test_tiles_variation_and_adc_match_surrogate(executor):
    variation = VariationConfig(sigma=0.15, p_stuck_on=0.05, p_stuck_off=0.05, adc_bits=10, seed=4)
    crossbar = CrossbarConfig(
        g_off=1e-6,
        g_on=5e-6,
        device=N_OF_G,
        r_word=2.0,
        r_bit=2.0,
        tile_rows=4,
        tile_cols=4,
        variation=variation,
    )
    law = crossbar.device.fitted_law(crossbar.v_ref)
    model = CrossbarMLP(NetworkConfig((7, 4, 3)), crossbar, IRDropSurrogate(law, crossbar.wiring, sweeps=4))
    assert len(model.layers[0].tiles) == 2 * 2
    x = np.random.default_rng(2).uniform(size=(5, 7))
    result = validate_circuit(model, x, np.arange(5) % 3, executor)
    assert result.netlists >= 4 + 4
    np.testing.assert_allclose(result.logits_spice, result.logits_surrogate, rtol=1e-6, atol=1e-6)
    # The netlists carry the chip's actual conductances, stuck devices included.
    g_layer, _ = model.layers[0].device_conductances()
    first = result.layers[0].tiles[0]
    np.testing.assert_allclose(first.conductances, g_layer.detach().numpy()[:4, :4], rtol=1e-12)
    json.dumps(result.summary())


def test_validate_cli_reports_figures(tmp_path, capsys):
    from spicecross.cli.main import main

    crossbar = CrossbarConfig(g_off=1e-5, g_on=5e-5, device=N_OF_G, r_word=2.0, r_bit=2.0)
    law = crossbar.device.fitted_law(crossbar.v_ref)
    model = CrossbarMLP(NetworkConfig((64, 3, 10)), crossbar, IRDropSurrogate(law, crossbar.wiring, sweeps=4))
    path = save_model(
        model,
        tmp_path / "m.pt",
        metadata={"dataset": "digits", "split_seed": 0, "kind": "aware", "level": "mid"},
    )
    assert main(["validate", str(path), "--subset", "12", "--workers", "2", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["examples"] == 12
    assert "subset of 12 of 360" in figures["subset"]
    assert figures["tops_per_w_spice"] == pytest.approx(
        tops_per_watt(figures["operations_per_inference"], figures["power_spice_w"], 10e-9)
    )
    assert abs(figures["accuracy_spice"] - figures["accuracy_surrogate"]) <= 1 / 12
    assert "arrays only" in figures["note"]
    assert "not included" in figures["note"]
    assert main(["validate", str(path), "--subset", "12"]) == 0
    assert "TOPS/W (arrays only)" in capsys.readouterr().out


def test_validate_cli_rejects_non_model(tmp_path, capsys):
    from spicecross.cli.main import main

    bad = tmp_path / "bad.pt"
    bad.write_text("hello")
    assert main(["validate", str(bad)]) == 2
    assert "not a spicecross model file" in capsys.readouterr().err


def test_validate_cli_rejects_report_json(tmp_path, capsys):
    from spicecross.cli.main import main

    report = tmp_path / "report.json"
    report.write_text(json.dumps({"config": {}, "networks": []}))
    assert main(["validate", str(report)]) == 2
    err = capsys.readouterr().err
    assert f"{report} is not a spicecross model file" in err
    assert "JSON" in err
    assert "models/*.pt" in err
    assert "weights_only" not in err


def test_nrmse_and_tops_definitions():
    assert nrmse([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert nrmse([1.1, 2.2], [1.0, 2.0]) == pytest.approx(0.1)
    assert tops_per_watt(2_000, 1e-3, 10e-9) == pytest.approx(2_000 / (1e-3 * 10e-9) / 1e12)
    with pytest.raises(ValueError, match="read time"):
        tops_per_watt(10, 1.0, 0.0)


@pytest.mark.dask
def test_dask_scheduler_solves_network():
    from dask.distributed import LocalCluster

    crossbar = CrossbarConfig(g_off=1e-5, g_on=5e-5, device=N_OF_G, r_word=2.0, r_bit=2.0)
    law = crossbar.device.fitted_law(crossbar.v_ref)
    model = CrossbarMLP(NetworkConfig((5, 3)), crossbar, IRDropSurrogate(law, crossbar.wiring, sweeps=4))
    x = np.random.default_rng(3).uniform(size=(4, 5))
    with LocalCluster(
        host="127.0.0.1", n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with ValidationExecutor(1, scheduler=cluster.scheduler_address) as executor:
            assert "dask" in executor.description
            result = validate_circuit(model, x, np.zeros(4, dtype=int), executor)
    assert result.ngspice_version.startswith("ngspice-")
    assert result.layers[0].nrmse_current < 1e-5
