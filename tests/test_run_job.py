"""The main job: configuration, stages and resume, report folder, bad inputs, other data sets."""

import json
from pathlib import Path

import numpy as np
import pytest

from spicecross.cli.main import main
from spicecross.data import write_idx
from spicecross.nn import ConfigurationError, load_model
from spicecross.training import job as job_module
from spicecross.training.job import RunConfigMismatchError, default_config_path, load_run_config, run_job

TINY = """
[run]
name = "tiny"
dataset = "digits"
seeds = [0]
train_subset = 120
test_subset = 12

[network]
sizes = [64, 4, 10]

[training]
epochs = 2
batch_size = 32
lr = 0.05
validate_every = 2
spice_subset = 6
grad_sweeps = 2

[crossbar]
r_word = 2.0
r_bit = 2.0

[crossbar.device]
law = "power_law"
n_coeffs = [2.0, 0.15, 0.12]

[[levels]]
name = "mid"
g_on = 5e-5
g_off = 1e-5

[[levels]]
name = "low"
g_on = 5e-6
ratio = 5
"""


def write_config(tmp_path, text=TINY, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_configs_load():
    full = load_run_config(default_config_path())
    assert [name for name, _, _ in full.levels] == ["high", "mid", "low"]
    assert [g_on for _, _, g_on in full.levels] == [5e-4, 5e-5, 5e-6]
    assert all(g_on / g_off == pytest.approx(5) for _, g_off, g_on in full.levels)
    assert full.crossbar.r_word == 2.0
    assert full.crossbar.tile_rows == 128
    assert full.crossbar.device.n_coeffs == (2.0, 0.15, 0.12)
    quick = load_run_config(default_config_path(quick=True))
    assert len(quick.levels) == 2
    assert quick.training.epochs < full.training.epochs


@pytest.mark.parametrize(
    "level, message",
    [
        ("name = 'bad'\ng_on = 1e-4\ng_off = 5e-4", "G_off < G_on"),
        ("name = 'bad'\ng_on = 1e-4\ng_off = 1e-4", "G_off < G_on"),
        ("name = 'bad'\ng_on = -1e-4\ng_off = 1e-5", "not positive"),
        ("name = 'bad'\ng_on = 1e-4\ng_off = 0.0", "not positive"),
        ("name = 'bad'\ng_on = 1e-4", "needs g_off"),
        ("name = 'bad'\ng_on = 1e-4\ng_of = 1e-5", "unknown key"),
    ],
)
def test_invalid_level_raises(tmp_path, level, message):
    text = TINY.split("[[levels]]")[0] + "[[levels]]\n" + level + "\n"
    with pytest.raises(ConfigurationError, match=message):
        load_run_config(write_config(tmp_path, text))


def test_invalid_level_on_command_line(tmp_path, capsys):
    text = TINY.split("[[levels]]")[0] + "[[levels]]\nname = 'x'\ng_on = 1e-5\ng_off = 2e-5\n"
    assert main(["run", "--config", str(write_config(tmp_path, text)), "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "G_off=2e-05 S, G_on=1e-05 S is invalid" in err


def test_unknown_setting_raises(tmp_path):
    with pytest.raises(ConfigurationError, match="unknown key"):
        load_run_config(write_config(tmp_path, TINY.replace("epochs = 2", "epoch = 2")))


@pytest.mark.ngspice
def test_run_resumes_after_interruption(tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO", logger="spicecross.training.loop")
    config = load_run_config(write_config(tmp_path))
    out = tmp_path / "report"
    real = job_module._stage_network
    calls = []

    from spicecross.training import loop

    real_save = loop._save_training_state

    def save_then_stop(folder, model, kind, train_config, epoch, *args, **kwargs):
        real_save(folder, model, kind, train_config, epoch, *args, **kwargs)
        raise KeyboardInterrupt  # the third stage stops after its first epoch

    def interrupted(ctx, level, law, surrogate, seed, kind):
        calls.append((level[0], kind))
        if len(calls) == 3:
            monkeypatch.setattr(loop, "_save_training_state", save_then_stop)
        return real(ctx, level, law, surrogate, seed, kind)

    monkeypatch.setattr(job_module, "_stage_network", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_job(config, out, workers=2, progress=False)
    monkeypatch.setattr(loop, "_save_training_state", real_save)
    partial = out / "stages" / "low-standard-seed0.training"
    assert (partial / "state.pt").is_file()
    finished = sorted(p.name for p in (out / "stages").glob("*.json"))
    assert finished == [
        "calibration.json",
        "mid-aware-seed0.json",
        "mid-standard-seed0.json",
        "surrogate-low.json",
        "surrogate-mid.json",
    ]
    first = (out / "stages" / "mid-standard-seed0.json").read_text()

    real_train = job_module.train
    computed = []

    def counting_train(*args, **kwargs):
        computed.append(kwargs["description"])
        return real_train(*args, **kwargs)

    monkeypatch.setattr(job_module, "train", counting_train)
    monkeypatch.setattr(job_module, "_stage_network", real)
    report = run_job(config, out, workers=2, progress=False)
    assert computed == ["low-standard-seed0", "low-aware-seed0"]
    assert "low-standard-seed0: resuming training after epoch 1 of 2" in caplog.text
    assert not partial.exists()
    assert (out / "stages" / "mid-standard-seed0.json").read_text() == first

    # The report folder: JSON with every figure, the table and the plots.
    data = json.loads((out / "report.json").read_text())
    assert data["ngspice_version"].startswith("ngspice-")
    assert len(data["networks"]) == 4
    for name in ("error_vs_power.png", "training_curves.png", "parity.png", "table.txt"):
        assert (out / name).stat().st_size > 0
    rows = report["summary"]["table"]
    assert {(r["level"], r["kind"]) for r in rows} == {
        (lvl, k) for lvl in ("mid", "low") for k in ("standard", "aware")
    }
    for net in data["networks"]:
        test = net["test"]
        assert test["examples"] == 12
        assert test["power_spice_w"] > 0
        assert net["training"]["checks"][-1]["epoch"] == 2
        loaded = load_model(out / net["model"])
        assert loaded.metadata["kind"] == net["kind"]
    aware = [n for n in data["networks"] if n["kind"] == "aware"]
    assert all(abs(n["test"]["accuracy_spice"] - n["test"]["accuracy_surrogate"]) <= 1 / 12 for n in aware)
    assert "aware_surrogate_within_1pp_of_spice" in data["summary"]["goals"]


def test_report_folder_of_other_configuration_raises(tmp_path):
    config = load_run_config(write_config(tmp_path))
    out = tmp_path / "report"
    job_module.StageStore(out, config)
    other = load_run_config(write_config(tmp_path, TINY.replace("epochs = 2", "epochs = 3"), "other.toml"))
    with pytest.raises(RunConfigMismatchError, match="another configuration"):
        job_module.StageStore(out, other)


def test_mnist_corrupted_idx_is_named_error(tmp_path, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    rng = np.random.default_rng(0)
    write_idx(data / "train-images-idx3-ubyte", rng.integers(0, 255, (30, 28, 28), dtype=np.uint8))
    write_idx(data / "train-labels-idx1-ubyte", rng.integers(0, 10, 30, dtype=np.uint8))
    write_idx(data / "t10k-images-idx3-ubyte", rng.integers(0, 255, (10, 28, 28), dtype=np.uint8))
    (data / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x0a\x01\x02")
    code = main(
        [
            "run",
            "--dataset",
            "mnist",
            "--data-dir",
            str(data),
            "--output",
            str(tmp_path / "r"),
            "--config",
            str(write_config(tmp_path)),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "t10k-labels-idx1-ubyte" in err


def test_mnist_mismatched_idx_is_named_error(tmp_path, capsys):
    data = tmp_path / "mnist"
    data.mkdir()
    rng = np.random.default_rng(0)
    write_idx(data / "train-images-idx3-ubyte", rng.integers(0, 255, (30, 28, 28), dtype=np.uint8))
    write_idx(data / "train-labels-idx1-ubyte", rng.integers(0, 10, 29, dtype=np.uint8))
    write_idx(data / "t10k-images-idx3-ubyte", rng.integers(0, 255, (10, 28, 28), dtype=np.uint8))
    write_idx(data / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 10, dtype=np.uint8))
    code = main(
        [
            "run",
            "--dataset",
            "mnist",
            "--data-dir",
            str(data),
            "--output",
            str(tmp_path / "r"),
            "--config",
            str(write_config(tmp_path)),
        ]
    )
    assert code == 2
    assert "train-labels-idx1-ubyte" in capsys.readouterr().err


@pytest.mark.dataset
@pytest.mark.ngspice
def test_fashion_mnist_one_short_epoch(tmp_path):
    from spicecross.data import FASHION_MNIST_DIRS

    if not any(Path(d).is_dir() for d in FASHION_MNIST_DIRS):
        pytest.skip("Fashion-MNIST not installed; run scripts/install-test-data.sh")
    text = (
        TINY.replace("train_subset = 120", "train_subset = 100")
        .replace("epochs = 2", "epochs = 1")
        .replace("validate_every = 2", "validate_every = 0")
        .replace("test_subset = 12", "test_subset = 5")
        .split("[[levels]]")[0]
        + "[[levels]]\nname = 'low'\ng_on = 5e-6\ng_off = 1e-6\n"
    )
    config = load_run_config(write_config(tmp_path, text), dataset="fashion-mnist")
    import dataclasses

    from spicecross.nn import NetworkConfig

    config = dataclasses.replace(config, network=NetworkConfig((784, 2, 10)), seeds=(0,))
    report = run_job(config, tmp_path / "fashion", workers=2, progress=False)
    net = report["networks"][0]
    # 785 rows do not fit one 128-row tile: the first layer is tiled.
    assert report["dataset"]["name"] == "fashion-mnist"
    assert net["test"]["examples"] == 5
    assert len(net["test"]["layers"]) == 2
    model = load_model(tmp_path / "fashion" / net["model"]).model
    assert len(model.layers[0].tiles) == 7


@pytest.mark.slow
@pytest.mark.ngspice
def test_run_quick_end_to_end(tmp_path, capsys):
    assert main(["run", "--quick", "--output", str(tmp_path / "quick"), "--workers", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ngspice_version"].startswith("ngspice-")
    assert {r["level"] for r in summary["table"]} == {"high", "low"}
    assert (tmp_path / "quick" / "report.json").exists()
    # A rerun skips every finished stage and rewrites the same table.
    assert main(["run", "--quick", "--output", str(tmp_path / "quick"), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["table"] == summary["table"]


def test_test_subset_per_dataset(tmp_path):
    text = TINY.replace("test_subset = 12", "test_subset = { digits = 0, mnist = 7 }")
    path = write_config(tmp_path, text)
    assert load_run_config(path).test_subset == 0
    assert load_run_config(path, dataset="mnist").test_subset == 7
    with pytest.raises(ConfigurationError, match="test_subset has no entry for the fashion-mnist data set"):
        load_run_config(path, dataset="fashion-mnist")


@pytest.mark.parametrize("old, new, message", [
    ("test_subset = 12", "test_subset = -3", "test_subset = -3 is invalid"),
    ("test_subset = 12", "test_subset = 1.5", "test_subset = 1.5 is invalid"),
    ("test_subset = 12", "test_subset = { digitz = 3 }",
     "unknown key '\\[run.test_subset\\] digitz' \\(did you mean 'digits'\\?\\)"),
    ("g_on = 5e-5", 'g_on = "5u"', "level 'mid': g_on = '5u' is invalid: give a conductance in S"),
    ("g_on = 5e-5", "g_on = true", "level 'mid': g_on = True is invalid"),
    ("g_off = 1e-5", "ratio = 0", "level 'mid': ratio = 0.0 is invalid: give G_on/G_off > 1"),
    ("r_bit = 2.0", "r_bti = 2.0", r"tiny.toml: unknown key '\[crossbar\] r_bti' \(did you mean 'r_bit'\?\)"),
    ('law = "power_law"', 'lwa = "power_law"', r"tiny.toml: unknown key '\[crossbar.device\] lwa'"),
])
def test_invalid_run_value_raises(tmp_path, old, new, message):
    path = write_config(tmp_path, TINY.replace(old, new))
    with pytest.raises(ConfigurationError, match=message):
        load_run_config(path)


def test_shipped_test_subsets():
    path = default_config_path()
    assert load_run_config(path).test_subset == 0
    assert load_run_config(path, dataset="fashion-mnist").test_subset == 200
    assert load_run_config(path, dataset="mnist").test_subset == 200


def test_level_range_error_names_file(tmp_path):
    path = write_config(tmp_path, TINY.replace("g_off = 1e-5", "g_off = 9e-5"))
    with pytest.raises(ConfigurationError) as info:
        load_run_config(path)
    assert str(info.value).startswith(str(path))
    assert "G_off < G_on" in str(info.value)


def test_quick_goals_carry_note():
    from spicecross.validation.report import format_table

    def network(kind):
        return {"level": "low", "kind": kind, "seed": 0,
                "training": {"surrogate": "ideal", "seconds": 1.0},
                "test": {"accuracy_spice": 0.5, "accuracy_surrogate": 0.5, "accuracy_ideal": 0.5,
                         "power_spice_w": 1e-4, "power_surrogate_w": 1e-4, "tops_per_w_spice": 1.0,
                         "layers": [{"nrmse_output": 0.0}]}}

    levels = [{"name": name, "g_on": g_on, "g_off": g_on / 5}
              for name, g_on in (("low", 5e-6), ("high", 5e-4))]
    report = {"config": {"name": "quick", "levels": levels, "read_time_s": 1e-8},
              "networks": [network("standard"), network("aware")],
              "elapsed_s_this_invocation": 1.0, "stages_reused": 0}
    report["summary"] = job_module.summarize(report)
    goals = report["summary"]["goals"]
    note = goals["low_level_aware_error_at_most_half_standard"]["note"]
    assert note.startswith("a goal of the default run")
    assert "note" not in goals["aware_surrogate_within_1pp_of_spice"]
    text = format_table(report)
    assert ("goal low_level_aware_error_at_most_half_standard: NOT met (a goal of the default run; "
            "--quick trains fewer epochs)") in text
