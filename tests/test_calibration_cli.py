"""The calibrate command on a tiny configuration, and configuration errors."""

import argparse
import json
from pathlib import Path

import pytest

from spicecross.calibration import load_config, parse_config
from spicecross.cli.calibrate import add_calibrate_parser

TINY = """
[calibration]
name = "tiny"

[device]
name = "power_law"
params = { n = 2.6 }

[device_sweep]
states = 3

[tiles]
rows = 6
cols = 5
r_word = 20.0
r_bit = 20.0
train = ["random", "binary"]
heldout = ["random"]
vectors = 8

[surrogates]
names = ["ideal", "device_only", "ir_drop", "learned"]
sweep_counts = [1, 2]
learned_steps = 40
cost_batch = 8
cost_repeats = 2

[grid]
rows = 6
cols = 5
r_wire = [5.0, 50.0]
g_ranges = [[5e-6, 5e-5]]
vectors = 4
"""


def _run(argv):
    parser = argparse.ArgumentParser(prog="spicecross")
    add_calibrate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.ngspice
def test_calibrate_tiny_config_json(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    out = tmp_path / "report"
    assert _run(["calibrate", str(config), "--output", str(out), "--json", "--workers", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ngspice_version"].startswith("ngspice-")
    assert set(summary["surrogates"]) == {"ideal", "device_only", "ir_drop", "learned"}
    for name in ("device_only", "ir_drop", "learned"):
        entry = summary["surrogates"][name]
        assert entry["nrmse"] >= 0
        assert entry["power_error"] >= 0
        assert entry["cost_relative_to_device_only"] > 0
    assert summary["surrogates"]["ir_drop"]["nrmse"] < summary["surrogates"]["device_only"]["nrmse"]

    report = json.loads((out / "report.json").read_text())
    assert report["ngspice_version"] == summary["ngspice_version"]
    assert report["device"]["fit"]["chosen"] == "power_law"
    for name in (
        "device_fit.png",
        "parity_ir_drop.png",
        "error_vs_wire_resistance.png",
        "error_vs_conductance_range.png",
        "surrogates/ir_drop.json",
        "surrogates/learned.npz",
        "law.json",
    ):
        assert (out / name).exists(), name
    assert len(report["grid"]["cells"]) == 2
    assert report["grid"]["engine"] == "exact"
    assert len(list((out / "sweeps").glob("*.npz"))) == 3


def test_unknown_key_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key '\[tiles\] row' \(did you mean 'rows'\?\)"):
        parse_config({"device": {"name": "sinh"}, "tiles": {"row": 8}})


def test_missing_device_named():
    with pytest.raises(ValueError, match="\\[device\\] name is missing"):
        parse_config({"tiles": {"rows": 8}})


def test_bad_state_kind_named():
    with pytest.raises(ValueError, match="\\[tiles\\] train"):
        parse_config({"device": {"name": "sinh"}, "tiles": {"train": ["stripes"]}})


def test_device_file_resolved_against_config(tmp_path):
    data = Path(__file__).parent / "data" / "devices" / "state_resistor.lib"
    config = tmp_path / "user.toml"
    config.write_text(f'[device]\nname = "{data}"\nstate_param = "rf"\nstate_range = [1e3, 1e7]\n')
    assert load_config(config).device.name == str(data.resolve())


@pytest.mark.parametrize("name", ["quick", "power_law", "sinh", "poole_frenkel", "power_law_n_of_g"])
def test_shipped_configs_parse(name):
    root = Path(__file__).resolve().parents[1] / "calibration"
    assert load_config(root / f"{name}.toml").name == name
