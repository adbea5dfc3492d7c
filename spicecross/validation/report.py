"""The report folder of ``spicecross run``: JSON with every figure, a table and three plots.

Files written (atomically) into the folder:

* ``report.json``: configuration, versions (ngspice included), calibration, surrogate
  choices, every network's training history, ngspice checks and test validation, and
  the goals as measured;
* ``table.txt``: the table that ``spicecross run`` prints;
* ``error_vs_power.png``: test error against power per inference, ngspice-validated
  points with the surrogate's predictions beside them;
* ``training_curves.png``: validation accuracy per epoch with the ngspice checks;
* ``parity.png``: surrogate against ngspice layer outputs on the test examples.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

from spicecross.netlist.writer import write_text_atomic
from spicecross.validation.metrics import nrmse

logger = logging.getLogger(__name__)

KIND_STYLE = {"standard": ("tab:red", "s"), "aware": ("tab:blue", "o")}


def format_table(report: dict) -> str:
    """Return the per-level table as plain text."""
    rows = report["summary"]["table"]
    lines = [
        f"{'level':<6} {'G_on (S)':>9} {'training':<9} {'seeds':>5} {'error SPICE':>16} {'error surr.':>11} "
        f"{'error ideal':>11} {'power (W)':>10} {'TOPS/W*':>8} {'layer NRMSE':>17}  surrogate"
    ]
    for r in rows:
        spread = f"±{100 * r['error_spice_std']:.1f}" if r["seeds"] > 1 else ""
        nrmse = "/".join(f"{e:.1e}" for e in r["nrmse_output"])
        lines.append(
            f"{r['level']:<6} {r['g_on_s']:>9.0e} {r['kind']:<9} {r['seeds']:>5} "
            f"{100 * r['error_spice']:>9.2f}%{spread:>6} {100 * r['error_surrogate']:>10.2f}% "
            f"{100 * r['error_ideal']:>10.2f}% {r['power_spice_w']:>10.3e} {r['tops_per_w_spice']:>8.1f} "
            f"{nrmse:>17}  {r['surrogate']}"
        )
    read_time = report["config"]["read_time_s"]
    lines.append(
        f"* arrays only, at a read time of {read_time * 1e9:g} ns: drivers, ADCs and digital circuits "
        "are not included"
    )
    for name, goal in report["summary"]["goals"].items():
        verdict = {True: "met", False: "NOT met", None: "not judged (resumed run)"}[goal["met"]]
        note = f" ({goal['note']})" if goal.get("note") else ""
        lines.append(f"goal {name}: {verdict}{note}")
    return "\n".join(lines)


def _save_figure(fig, path: Path) -> None:
    """Save ``fig`` as PNG to ``path`` through a temporary file and a rename.

    The temporary file is created with mode 0o666, which the umask reduces, so the figure
    gets the same mode as the JSON and text files of the folder (0o644 under a umask of 0o022).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.png")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def plot_error_vs_power(report: dict, path: Path) -> None:
    """Plot test error (%) against power per inference (W): ngspice points, surrogate predictions beside."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for kind, (color, marker) in KIND_STYLE.items():
        nets = [n for n in report["networks"] if n["kind"] == kind]
        if not nets:
            continue
        ax.scatter(
            [n["test"]["power_spice_w"] for n in nets],
            [100 * (1 - n["test"]["accuracy_spice"]) for n in nets],
            color=color,
            marker=marker,
            label=f"{kind}: ngspice-validated",
            zorder=3,
        )
        ax.scatter(
            [n["test"]["power_surrogate_w"] for n in nets],
            [100 * (1 - n["test"]["accuracy_surrogate"]) for n in nets],
            facecolors="none",
            edgecolors=color,
            marker=marker,
            s=90,
            label=f"{kind}: surrogate prediction",
            zorder=2,
        )
    ax.set_xscale("log")
    ax.set_xlabel("power per inference (W)")
    ax.set_ylabel("test error (%)")
    ax.set_title(f"{report['dataset']['name']}: test error against power")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save_figure(fig, path)
    plt.close(fig)


def plot_training_curves(report: dict, path: Path) -> None:
    """Plot validation accuracy per epoch (surrogate, whole split) with the ngspice checks, per level."""
    import matplotlib.pyplot as plt

    levels = [lvl["name"] for lvl in report["config"]["levels"]]
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 3.6), squeeze=False, sharey=True)
    for ax, level in zip(axes[0], levels, strict=True):
        for net in (n for n in report["networks"] if n["level"] == level):
            color, marker = KIND_STYLE[net["kind"]]
            history = net["training"]["history"]
            label = f"{net['kind']} seed {net['seed']}"
            ax.plot(
                [h["epoch"] for h in history],
                [100 * h["val_accuracy_surrogate"] for h in history],
                color=color,
                alpha=0.8,
                label=f"{label}: surrogate",
            )
            checks = net["training"]["checks"]
            # The checks use a fixed subset of the validation split, so the surrogate's accuracy on
            # that same subset is drawn beside them (hollow) for comparison.
            ax.scatter(
                [c["epoch"] for c in checks],
                [100 * c["accuracy_spice"] for c in checks],
                color=color,
                marker=marker,
                edgecolors="black",
                zorder=3,
                label=f"{label}: ngspice check (subset)",
            )
            ax.scatter(
                [c["epoch"] for c in checks],
                [100 * c["accuracy_surrogate"] for c in checks],
                facecolors="none",
                edgecolors=color,
                marker=marker,
                s=110,
                zorder=2,
                label=f"{label}: surrogate on that subset",
            )
        ax.set_title(f"level {level}")
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("validation accuracy (%)")
    axes[0][-1].legend(fontsize=7)
    _save_figure(fig, path)
    plt.close(fig)


def plot_parity(report: dict, path: Path) -> None:
    """Plot surrogate against ngspice layer outputs on the test examples, one panel per level.

    Each level gets its own panel and axis range, because the levels' output ranges differ
    and their points would otherwise cover each other. Within a panel, the standard and
    aware trainings are drawn with open markers of different shapes.
    """
    import matplotlib.pyplot as plt

    levels = [lvl["name"] for lvl in report["config"]["levels"]]
    points = {level: _parity_points(report, level) for level in levels}
    panel_levels = [level for level in levels if points[level]] or levels[:1]
    fig, axes = plt.subplots(1, len(panel_levels), figsize=(4.4 * len(panel_levels), 4.6), squeeze=False)
    for ax, level in zip(axes[0], panel_levels, strict=True):
        spice_all, surrogate_all = [], []
        for kind, (spice, surrogate) in points[level].items():
            color, marker = KIND_STYLE.get(kind, ("tab:gray", "^"))
            ax.scatter(spice, surrogate, s=14, marker=marker, facecolors="none", edgecolors=color,
                       linewidths=0.7, alpha=0.6, label=kind, zorder=2)
            spice_all += spice
            surrogate_all += surrogate
        if spice_all:
            low, high = min(*spice_all, *surrogate_all), max(*spice_all, *surrogate_all)
            ax.plot([low, high], [low, high], color="gray", linewidth=0.8, label="surrogate = ngspice",
                    zorder=1)
            error = nrmse(surrogate_all, spice_all)
            ax.text(0.97, 0.03, f"NRMSE of these points {error:.1e}", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=8)
            ax.legend(fontsize=8, loc="upper left", markerscale=1.5)
        else:
            ax.text(0.5, 0.5, "no test outputs in the report", transform=ax.transAxes, ha="center")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"level {level}")
        ax.set_xlabel("layer output y, ngspice")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("layer output y, surrogate (on ngspice's inputs)")
    fig.suptitle("surrogate against ngspice, test examples")
    _save_figure(fig, path)
    plt.close(fig)


def _parity_points(report: dict, level: str) -> dict[str, tuple[list[float], list[float]]]:
    """Return {training kind: (ngspice outputs, surrogate outputs)} of every network of ``level``."""
    points: dict[str, tuple[list[float], list[float]]] = {}
    for net in (n for n in report["networks"] if n["level"] == level):
        spice, surrogate = points.setdefault(net["kind"], ([], []))
        for layer in net["test"]["parity"]:
            spice += layer["spice"]
            surrogate += layer["surrogate"]
    return {kind: pair for kind, pair in points.items() if pair[0]}


def write_report(report: dict, folder: str | Path) -> Path:
    """Write ``report.json``, ``table.txt`` and the plots into ``folder``; return the JSON path."""
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.json"
    write_text_atomic(path, json.dumps(report, indent=1))
    write_text_atomic(folder / "table.txt", format_table(report) + "\n")
    plot_error_vs_power(report, folder / "error_vs_power.png")
    plot_training_curves(report, folder / "training_curves.png")
    plot_parity(report, folder / "parity.png")
    return path
