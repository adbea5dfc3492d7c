"""Report folder of the main job: file modes and the parity plot."""

import os

import matplotlib
import pytest

from spicecross.validation import report as report_module
from spicecross.validation.report import write_report

matplotlib.use("Agg")


def make_network(level, kind, scale):
    """Return a network entry of a report with the fields that the table and plots read."""
    outputs = [scale * (k - 5) / 5 for k in range(11)]
    return {
        "level": level, "kind": kind, "seed": 0,
        "training": {
            "history": [{"epoch": epoch, "val_accuracy_surrogate": 0.5 + 0.1 * epoch} for epoch in (1, 2)],
            "checks": [{"epoch": 2, "accuracy_spice": 0.7, "accuracy_surrogate": 0.7}],
        },
        "test": {
            "accuracy_spice": 0.8, "accuracy_surrogate": 0.8,
            "power_spice_w": scale * 1e-3, "power_surrogate_w": scale * 1e-3,
            "parity": [{"spice": outputs, "surrogate": [1.01 * y for y in outputs]}],
        },
    }


def make_report():
    levels = [{"name": "high", "g_off": 1e-4, "g_on": 5e-4}, {"name": "low", "g_off": 1e-6, "g_on": 5e-6}]
    row = {"level": "high", "g_on_s": 5e-4, "kind": "aware", "seeds": 1, "error_spice": 0.2,
           "error_spice_std": 0.0, "error_surrogate": 0.2, "error_ideal": 0.1, "power_spice_w": 1e-3,
           "tops_per_w_spice": 10.0, "nrmse_output": [1e-8], "surrogate": "ideal"}
    networks = [make_network(level["name"], kind, scale)
                for level, scale in zip(levels, (4.0, 9.0), strict=True) for kind in ("standard", "aware")]
    return {
        "config": {"levels": levels, "read_time_s": 1e-8},
        "dataset": {"name": "digits"},
        "networks": networks,
        "summary": {"table": [row], "goals": {}},
    }


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_report_files_follow_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_report(make_report(), tmp_path)
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["error_vs_power.png", "parity.png", "report.json", "table.txt", "training_curves.png"]
    for path in tmp_path.iterdir():
        assert oct(path.stat().st_mode & 0o777) == oct(expected), path.name


def test_failed_figure_leaves_no_temporary_file(tmp_path):
    class BrokenFigure:
        def savefig(self, *args, **kwargs):
            raise RuntimeError("savefig failed")

    with pytest.raises(RuntimeError, match="savefig failed"):
        report_module._save_figure(BrokenFigure(), tmp_path / "parity.png")
    assert list(tmp_path.iterdir()) == []


def test_parity_plot_has_panel_per_level(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    saved = {}
    monkeypatch.setattr(report_module, "_save_figure", lambda fig, path: saved.setdefault("figure", fig))
    monkeypatch.setattr(plt, "close", lambda fig: None)
    report_module.plot_parity(make_report(), tmp_path / "parity.png")
    axes = saved["figure"].axes
    assert [ax.get_title() for ax in axes] == ["level high", "level low"]
    for ax in axes:
        labels = ax.get_legend_handles_labels()[1]
        assert labels == ["standard", "aware", "surrogate = ngspice"]
        assert len(ax.collections) == 2
        assert all(len(points.get_offsets()) == 11 for points in ax.collections)
    assert axes[1].get_xlim()[1] > axes[0].get_xlim()[1]
