"""Calibration results shipped with spicecross, loadable without ngspice.

They live in ``calibration/results/`` (installed as package data): each result
is ``NAME.json`` (with ``NAME.npz`` for a surrogate), written by
``python -m spicecross.calibration.shipped`` from ngspice sweeps
(:func:`make_shipped_results`). ``results/index.json``
lists them with a one-line description.
"""

from __future__ import annotations

import json
from pathlib import Path

from spicecross.resources import data_dir


def results_dir() -> Path:
    """Return the folder of the shipped calibration results."""
    return data_dir("calibration") / "results"


def list_shipped_calibrations() -> dict[str, str]:
    """Return ``{name: description}`` of every shipped result."""
    index = results_dir() / "index.json"
    if not index.exists():
        return {}
    return {name: entry["description"] for name, entry in json.loads(index.read_text())["results"].items()}


def load_shipped_calibration(name: str):
    """Load a shipped result: ``(surrogate or FittedLaw, provenance)``.

    Args:
        name: a name from :func:`list_shipped_calibrations`, such as
            ``power_law_n_of_g`` (the law) or ``power_law_n_of_g_2ohm_mid_ir_drop`` (a surrogate).

    Raises:
        FileNotFoundError: no shipped result of that name; the message lists the names.
    """
    import spicecross.surrogates.learned  # noqa: F401  (registers the "learned" kind for load_surrogate)
    from spicecross.calibration.pipeline import LAW_FORMAT, load_law
    from spicecross.surrogates.io import load_surrogate

    path = results_dir() / f"{name}.json"
    if not path.exists():
        known = sorted(list_shipped_calibrations())
        raise FileNotFoundError(f"no shipped calibration {name!r} in {results_dir()}: available are {known}")
    if json.loads(path.read_text()).get("format") == LAW_FORMAT:
        return load_law(path)
    return load_surrogate(path)


#: Power levels of the shipped surrogates: conductance range (S) of the tiles they were fitted on.
POWER_LEVELS = {"high": (1e-4, 5e-4), "mid": (1e-5, 5e-5), "low": (1e-6, 5e-6)}
#: Surrogates shipped per power level.
SHIPPED_SURROGATES = ("device_only", "ir_drop", "learned")


def make_shipped_results(
    output: str | Path | None = None, *, workers: int = 2, progress: bool = True
) -> dict:
    """Regenerate the shipped results from ngspice sweeps (about 3 minutes on 2 cores).

    Runs ``calibration/power_law_n_of_g.toml`` once per power level of
    :data:`POWER_LEVELS` (32x32 tiles, 2 Ω segments), then copies the fitted law
    and the surrogates of :data:`SHIPPED_SURROGATES` into ``output`` (default
    :func:`results_dir`) and writes ``index.json``.
    """
    import shutil
    import tempfile
    from dataclasses import replace

    from spicecross.calibration.config import load_config
    from spicecross.calibration.pipeline import run_calibration

    output = Path(output) if output is not None else results_dir()
    output.mkdir(parents=True, exist_ok=True)
    base = load_config(data_dir("calibration") / "power_law_n_of_g.toml")
    index = {}
    with tempfile.TemporaryDirectory(prefix="spicecross-shipped-") as tmp:
        for level, (g_min, g_max) in POWER_LEVELS.items():
            config = replace(
                base, name=f"{base.name}_{level}", tiles=replace(base.tiles, g_min=g_min, g_max=g_max)
            )
            report = run_calibration(config, output=Path(tmp) / level, workers=workers, progress=progress)
            if "power_law_n_of_g" not in index:
                shutil.copy(Path(tmp) / level / "law.json", output / "power_law_n_of_g.json")
                (output / "power_law_n_of_g.json").chmod(0o644)
                fit = report["device"]["fit"]
                index["power_law_n_of_g"] = {
                    "description": f"FittedLaw power_law with n(G) coefficients {fit['law']['n_coeffs']} "
                    f"(residual {fit['residual']:.1e}) from ngspice sweeps of the power-law "
                    "subcircuit with per-device n",
                    "kind": "law",
                }
            for name in SHIPPED_SURROGATES:
                target = f"power_law_n_of_g_2ohm_{level}_{name}"
                for suffix in (".json", ".npz"):
                    shutil.copy(
                        Path(tmp) / level / "surrogates" / f"{name}{suffix}", output / f"{target}{suffix}"
                    )
                score = report["scores"][name]
                index[target] = {
                    "description": f"{name} surrogate, 2 ohm segments, fitted on 32x32 tiles with G "
                    f"{g_min:g}..{g_max:g} S; held-out SPICE NRMSE {score['nrmse']:.2%}",
                    "kind": name,
                    "g_range_s": [g_min, g_max],
                    "heldout_nrmse": score["nrmse"],
                    "heldout_power_error": score["power_error"],
                    "cost_relative_to_device_only": score.get("cost", {}).get("relative_to_device_only"),
                }
    (output / "index.json").write_text(json.dumps({"results": index}, indent=1))
    return index


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(json.dumps(make_shipped_results(), indent=1))
