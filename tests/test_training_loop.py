"""Training loops: both kinds, seeds, periodic ngspice checks, checkpoints and re-calibration."""

import numpy as np
import pytest
import torch

from spicecross.data import load_dataset, subsample
from spicecross.nn import (
    ConfigurationError,
    CrossbarConfig,
    CrossbarMLP,
    DeviceConfig,
    NetworkConfig,
    load_model,
)
from spicecross.surrogates import DeviceOnlySurrogate, IRDropSurrogate
from spicecross.training import (
    PeriodicValidator,
    TrainConfig,
    choose_surrogate,
    recalibrate,
    stratified_indices,
    train,
)
from spicecross.validation import ValidationExecutor, validate_circuit

N_OF_G = DeviceConfig(n_coeffs=(2.0, 0.15, 0.12))


@pytest.fixture(scope="module")
def digits():
    return subsample(load_dataset("digits"), n_train=200, seed=0)


def small_model(crossbar, surrogate, seed=0):
    return CrossbarMLP(NetworkConfig((64, 6, 10)), crossbar, surrogate, seed=seed)


def test_standard_training_learns_and_is_seeded(digits):
    crossbar = CrossbarConfig(g_off=1e-5, g_on=5e-5, device=N_OF_G)
    surrogate = DeviceOnlySurrogate(crossbar.device.fitted_law(0.25))
    config = TrainConfig(epochs=6, lr=0.1, batch_size=32, validate_every=0)
    a = train(small_model(crossbar, surrogate), digits, config, "standard")
    b = train(small_model(crossbar, surrogate), digits, config, "standard")
    assert a.history[-1].val_accuracy_ideal > 0.5
    assert a.history[-1].train_loss < a.history[0].train_loss
    for pa, pb in zip(a.model.weight_parameters(), b.model.weight_parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert a.checks == []


def test_aware_training_trains_weights_only(digits):
    crossbar = CrossbarConfig(g_off=1e-6, g_on=5e-6, device=N_OF_G, r_word=2.0, r_bit=2.0)
    surrogate = IRDropSurrogate(crossbar.device.fitted_law(0.25), crossbar.wiring, sweeps=2)
    model = small_model(crossbar, surrogate)
    result = train(model, digits, TrainConfig(epochs=3, lr=0.1, validate_every=0), "aware")
    assert result.history[-1].val_accuracy_surrogate > 0.2
    assert float(result.model.layers[0].surrogate.log_scale_word) == 0.0
    assert result.surrogate == "ir_drop (2 sweeps, damping 1)"


def test_train_rejects_unknown_kind(digits):
    crossbar = CrossbarConfig(device=N_OF_G)
    model = small_model(crossbar, DeviceOnlySurrogate(crossbar.device.fitted_law(0.25)))
    with pytest.raises(ConfigurationError, match="'ideal'"):
        train(model, digits, TrainConfig(epochs=1), "ideal")
    with pytest.raises(ConfigurationError, match="lr"):
        TrainConfig(lr=0.0)


def test_stratified_indices_keep_class_shares():
    labels = np.repeat(np.arange(4), [40, 30, 20, 10])
    index = stratified_indices(labels, 20, seed=0)
    assert len(index) == 20
    assert np.bincount(labels[index]).tolist() == [8, 6, 4, 2]
    assert np.array_equal(index, stratified_indices(labels, 20, seed=0))
    assert len(stratified_indices(labels, 0, seed=0)) == 100


@pytest.mark.ngspice
def test_periodic_checks_checkpoint_and_recalibrate(digits, tmp_path):
    crossbar = CrossbarConfig(g_off=1e-4, g_on=5e-4, device=N_OF_G, r_word=2.0, r_bit=2.0)
    law = crossbar.device.fitted_law(0.25)
    surrogate = IRDropSurrogate(law, crossbar.wiring, sweeps=6, damping=0.8)
    with torch.no_grad():
        # A miscalibrated surrogate: the checks must find and refit it.
        surrogate.log_scale_word.fill_(1.0)
    model = small_model(crossbar, surrogate)

    index = stratified_indices(digits.y_val, 10, seed=0)
    with ValidationExecutor(2) as executor:
        validator = PeriodicValidator(executor, digits.x_val[index], digits.y_val[index])
        try:
            result = train(
                model,
                digits,
                TrainConfig(epochs=2, lr=0.05, validate_every=1, nrmse_bound=0.02),
                "aware",
                validator=validator,
                checkpoint=tmp_path / "best.pt",
                metadata={"dataset": "digits"},
            )
        finally:
            validator.close()

    assert [c.epoch for c in result.checks] == [1, 2]
    first = result.checks[0]
    assert first.recalibration is not None
    report = first.recalibration[0]
    assert report["nrmse_after"] < report["nrmse_before"]
    assert abs(float(result.model.layers[0].surrogate.log_scale_word)) < 1.0
    assert sum(c.best for c in result.checks) >= 1

    saved = load_model(tmp_path / "best.pt")
    assert saved.metadata["kind"] == "aware"
    assert saved.metadata["epoch"] == result.best_epoch


def test_choose_surrogate_measures_candidates(digits):
    crossbar = CrossbarConfig(g_off=1e-4, g_on=5e-4, device=N_OF_G, r_word=2.0, r_bit=2.0)
    law = crossbar.device.fitted_law(0.25)
    model = small_model(crossbar, DeviceOnlySurrogate(law))
    layer = model.layers[0]
    v = layer.read_voltages(torch.as_tensor(digits.x_train[:4], dtype=torch.float64)).numpy()
    ((tile, g),) = layer.tile_conductances()
    choice = choose_surrogate(crossbar, law, [(v, g)], tolerance=1e-3, dtype=torch.float64)
    assert choice.surrogate.kind == "ir_drop"
    assert choice.measured[choice.label] <= 1e-3
    ideal = CrossbarConfig(g_off=1e-4, g_on=5e-4, device=N_OF_G)
    assert choose_surrogate(ideal, law, [(v, g)]).surrogate.kind == "device_only"


@pytest.mark.ngspice
def test_recalibrate_keeps_a_good_surrogate(digits):
    crossbar = CrossbarConfig(g_off=1e-5, g_on=5e-5, device=N_OF_G, r_word=2.0, r_bit=2.0)
    law = crossbar.device.fitted_law(0.25)
    model = small_model(crossbar, IRDropSurrogate(law, crossbar.wiring, sweeps=4))
    with ValidationExecutor(1) as executor:
        result = validate_circuit(model, digits.x_val[:4], digits.y_val[:4], executor)
    surrogate, report = recalibrate(model.layers[0].surrogate, result.layers[0].tiles)
    assert report.after <= report.before < 1e-5


@pytest.mark.ngspice
def test_short_sweep_fits_device_law():
    from spicecross.training.calibrate import fit_power_law_sweep

    crossbar = CrossbarConfig(device=N_OF_G)
    with ValidationExecutor(1) as executor:
        law, provenance = fit_power_law_sweep(crossbar, executor, g_min=1e-6, g_max=5e-4)
    np.testing.assert_allclose(law.n_coeffs, [2.0, 0.15, 0.12], atol=2e-3)
    assert provenance["source"] == "short ngspice sweep"
    assert provenance["ngspice_version"].startswith("ngspice-")


@pytest.mark.ngspice
def test_missing_shipped_law_falls_back(monkeypatch, caplog):
    import spicecross.calibration
    from spicecross.training.calibrate import surrogate_law

    def missing(name):
        raise FileNotFoundError(f"no shipped calibration {name!r}")

    monkeypatch.setattr(spicecross.calibration, "load_shipped_calibration", missing)
    crossbar = CrossbarConfig(device=N_OF_G)
    with ValidationExecutor(1) as executor:
        law, provenance = surrogate_law(crossbar, executor, g_min=1e-6, g_max=5e-4)
    assert provenance["source"] == "short ngspice sweep"
    assert "fitting the device law from a short ngspice sweep" in caplog.text
    np.testing.assert_allclose(law.n_coeffs, [2.0, 0.15, 0.12], atol=2e-3)


def _interrupt_after(monkeypatch, stop_epoch):
    """Make train() stop with KeyboardInterrupt right after it saved the state of ``stop_epoch``."""
    from spicecross.training import loop

    original = loop._save_training_state

    def save_then_stop(folder, model, kind, config, epoch, *args, **kwargs):
        original(folder, model, kind, config, epoch, *args, **kwargs)
        if epoch == stop_epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save_training_state", save_then_stop)


def _without_seconds(records):
    """Return the records as dicts without their wall times, nested ones included."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "seconds"}
        return value

    return [strip(vars(r)) for r in records]


def test_interrupted_training_resumes_same(digits, tmp_path, monkeypatch):
    crossbar = CrossbarConfig(g_off=1e-5, g_on=5e-5, device=N_OF_G)
    surrogate = DeviceOnlySurrogate(crossbar.device.fitted_law(0.25))
    config = TrainConfig(epochs=5, lr=0.1, batch_size=32, validate_every=0)
    whole = train(small_model(crossbar, surrogate), digits, config, "standard",
                  checkpoint=tmp_path / "whole.pt", resume_dir=tmp_path / "whole")

    with monkeypatch.context() as patch:
        _interrupt_after(patch, stop_epoch=2)
        with pytest.raises(KeyboardInterrupt):
            train(small_model(crossbar, surrogate), digits, config, "standard",
                  checkpoint=tmp_path / "part.pt", resume_dir=tmp_path / "part")
    # A stop while the next epoch's model was being written leaves a partial file
    # beside the state, which still names the model of epoch 2.
    (tmp_path / "part" / "model-1.pt").write_bytes(b"partial")
    resumed = train(small_model(crossbar, surrogate), digits, config, "standard",
                    checkpoint=tmp_path / "part.pt", resume_dir=tmp_path / "part")

    assert len(resumed.history) == 5
    assert _without_seconds(resumed.history) == _without_seconds(whole.history)
    for pa, pb in zip(resumed.model.weight_parameters(), whole.model.weight_parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_resume_ignores_other_training(digits, tmp_path, monkeypatch):
    crossbar = CrossbarConfig(g_off=1e-5, g_on=5e-5, device=N_OF_G)
    surrogate = DeviceOnlySurrogate(crossbar.device.fitted_law(0.25))
    config = TrainConfig(epochs=3, lr=0.1, batch_size=32, validate_every=0)
    with monkeypatch.context() as patch:
        _interrupt_after(patch, stop_epoch=1)
        with pytest.raises(KeyboardInterrupt):
            train(small_model(crossbar, surrogate), digits, config, "standard",
                  checkpoint=tmp_path / "m.pt", resume_dir=tmp_path / "state")
    other = TrainConfig(epochs=3, lr=0.05, batch_size=32, validate_every=0)
    result = train(small_model(crossbar, surrogate), digits, other, "standard",
                   checkpoint=tmp_path / "m.pt", resume_dir=tmp_path / "state")
    fresh = train(small_model(crossbar, surrogate), digits, other, "standard")
    assert _without_seconds(result.history) == _without_seconds(fresh.history)


@pytest.mark.ngspice
def test_interrupted_checks_resume_same(digits, tmp_path, monkeypatch, caplog):
    crossbar = CrossbarConfig(g_off=1e-4, g_on=5e-4, device=N_OF_G, r_word=2.0, r_bit=2.0)
    law = crossbar.device.fitted_law(0.25)
    index = stratified_indices(digits.y_val, 8, seed=0)
    config = TrainConfig(epochs=3, lr=0.05, validate_every=1, nrmse_bound=0.02)

    def run(name, executor):
        surrogate = IRDropSurrogate(law, crossbar.wiring, sweeps=6, damping=0.8)
        with torch.no_grad():
            surrogate.log_scale_word.fill_(1.0)  # miscalibrated, so the first check refits it
        validator = PeriodicValidator(executor, digits.x_val[index], digits.y_val[index])
        try:
            return train(small_model(crossbar, surrogate), digits, config, "aware", validator=validator,
                         checkpoint=tmp_path / f"{name}.pt", resume_dir=tmp_path / name)
        finally:
            validator.close()

    with ValidationExecutor(2) as executor:
        whole = run("whole", executor)
        with monkeypatch.context() as patch:
            # Epoch 2's check is due but not yet submitted when the training stops.
            _interrupt_after(patch, stop_epoch=2)
            with pytest.raises(KeyboardInterrupt):
                run("part", executor)
        resumed = run("part", executor)
        with monkeypatch.context() as patch:
            _interrupt_after(patch, stop_epoch=2)
            with pytest.raises(KeyboardInterrupt):
                run("damaged", executor)
        # A damaged best-model file: the state is ignored and training starts again.
        (tmp_path / "damaged.pt").write_bytes(b"not a model")
        restarted = run("damaged", executor)

    assert _without_seconds(restarted.checks) == _without_seconds(whole.checks)
    assert "training starts from epoch 1" in caplog.text
    assert [c.epoch for c in resumed.checks] == [1, 2, 3]
    assert _without_seconds(resumed.checks) == _without_seconds(whole.checks)
    assert _without_seconds(resumed.history) == _without_seconds(whole.history)
    assert resumed.best_epoch == whole.best_epoch
    for pa, pb in zip(resumed.model.weight_parameters(), whole.model.weight_parameters(), strict=True):
        assert torch.equal(pa, pb)
