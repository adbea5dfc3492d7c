"""The calibration report folder: ``report.json``, arrays and PNG plots (matplotlib, Agg backend).

Plots:

* ``device_fit.png``: the swept I–V curves of every state and the fitted law;
* ``parity_NAME.png``: each surrogate's held-out bit-line currents against SPICE's;
* ``error_vs_wire_resistance.png`` and ``error_vs_conductance_range.png``: the
  exact-solver grid, NRMSE of each surrogate against wire resistance (one line
  per conductance range) and against the conductance range (one line per resistance).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from spicecross.calibration.device import DeviceSweep, LawFit
from spicecross.calibration.tiles import TileSet

logger = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_report(
    out: Path, report: dict, sweep: DeviceSweep, law_fit: LawFit, heldout: TileSet, predictions: dict
) -> list[str]:
    """Write ``report.json``, the arrays and the plots into ``out``; return the files written."""
    out = Path(out)
    files = ["report.json", "device_sweep.npz", "predictions.npz"]
    np.savez(
        out / "device_sweep.npz",
        voltages_v=sweep.voltages,
        currents_a=sweep.currents,
        conductances_s=sweep.conductances,
        targets_s=sweep.targets,
    )
    np.savez(
        out / "predictions.npz",
        spice_currents_a=heldout.currents,
        spice_power_w=heldout.power,
        **{f"{name}_currents_a": c for name, (c, _) in predictions.items()},
        **{f"{name}_power_w": p for name, (_, p) in predictions.items()},
    )
    plt = _pyplot()
    files.append(plot_device_fit(plt, out / "device_fit.png", sweep, law_fit))
    for name, (currents, _) in predictions.items():
        files.append(
            plot_parity(
                plt,
                out / f"parity_{name}.png",
                name,
                heldout.currents,
                currents,
                report["scores"][name]["nrmse"],
            )
        )
    grid = report.get("grid")
    if grid and grid.get("cells"):
        files += plot_grid(plt, out, grid)
    report["files"] = sorted(
        files + [f"surrogates/{Path(p).name}" for p in report["surrogate_files"].values()]
    )
    (out / "report.json").write_text(json.dumps(report, indent=1, default=_json_default))
    return report["files"]


def plot_device_fit(plt, path: Path, sweep: DeviceSweep, law_fit: LawFit) -> str:
    """Plot the swept I–V curves (dots) and the chosen law (lines)."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    model = law_fit.law.current(sweep.voltages[None, :], sweep.conductances[:, None])
    for k in range(sweep.conductances.size):
        (line,) = ax.plot(sweep.voltages, model[k] * 1e6, lw=1)
        ax.plot(sweep.voltages[::4], sweep.currents[k, ::4] * 1e6, ".", color=line.get_color(), ms=3)
    ax.set_xlabel("device voltage (V)")
    ax.set_ylabel("current (µA)")
    ax.set_title(f"{sweep.device}: {law_fit.chosen.name} law, residual {law_fit.residual:.2%}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_parity(
    plt, path: Path, name: str, reference: np.ndarray, predicted: np.ndarray, error: float
) -> str:
    """Plot a surrogate's currents against the SPICE currents (µA), with the line y = x."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ref, pred = reference.ravel() * 1e6, predicted.ravel() * 1e6
    finite = np.isfinite(pred)
    ax.plot(ref[finite], pred[finite], ".", ms=2, alpha=0.5)
    low, high = float(ref.min()), float(ref.max())
    ax.plot([low, high], [low, high], "k-", lw=0.8)
    ax.set_xlabel("SPICE bit-line current (µA)")
    ax.set_ylabel(f"{name} current (µA)")
    ax.set_title(f"{name}: NRMSE {error:.3%}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_grid(plt, out: Path, grid: dict) -> list[str]:
    """Plot the grid's NRMSE against wire resistance and against conductance range."""
    cells = grid["cells"]
    names = list(cells[0]["nrmse"])
    r_values = sorted({c["r_wire_ohm"] for c in cells})
    ranges = sorted({(c["g_min_s"], c["g_max_s"]) for c in cells})

    def value(name, r, g_range):
        for c in cells:
            if c["r_wire_ohm"] == r and (c["g_min_s"], c["g_max_s"]) == g_range:
                v = c["nrmse"][name]
                return np.nan if v is None else v
        return np.nan

    goal = grid.get("nrmse_goal")
    files = []
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], names, strict=False):
        for g_range in ranges:
            ax.plot(
                r_values,
                [value(name, r, g_range) for r in r_values],
                "o-",
                ms=3,
                label=f"G {g_range[0]:.0e}..{g_range[1]:.0e} S",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        if goal:
            ax.axhline(goal, color="k", ls="--", lw=0.8)
        ax.set_title(name)
        ax.set_xlabel("wire segment resistance (Ω)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("NRMSE of bit-line currents")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"exact-solver grid, {grid['rows']}x{grid['cols']} tiles")
    fig.tight_layout()
    fig.savefig(out / "error_vs_wire_resistance.png", dpi=110)
    plt.close(fig)
    files.append("error_vs_wire_resistance.png")

    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False, sharey=True)
    g_max = [g[1] for g in ranges]
    for ax, name in zip(axes[0], names, strict=False):
        for r in r_values:
            ax.plot(g_max, [value(name, r, g) for g in ranges], "o-", ms=3, label=f"{r:g} Ω")
        ax.set_xscale("log")
        ax.set_yscale("log")
        if goal:
            ax.axhline(goal, color="k", ls="--", lw=0.8)
        ax.set_title(name)
        ax.set_xlabel("G_max of the range (S); G_min as configured")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("NRMSE of bit-line currents")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"exact-solver grid, {grid['rows']}x{grid['cols']} tiles")
    fig.tight_layout()
    fig.savefig(out / "error_vs_conductance_range.png", dpi=110)
    plt.close(fig)
    files.append("error_vs_conductance_range.png")
    return files
