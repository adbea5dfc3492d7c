"""Locations of the data folders that ship with spicecross.

``device_models/`` and ``calibration/`` sit at the top of the repository and are
also installed as package data (``spicecross.resources.device_models`` and
``spicecross.resources.calibration``), so a wheel works without the repository.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir(name: str) -> Path:
    """Return the folder of shipped data ``name`` (``device_models`` or ``calibration``)."""
    if name not in ("device_models", "calibration"):
        raise ValueError(f"unknown data folder {name!r}: expected 'device_models' or 'calibration'")
    try:
        path = Path(str(resources.files(f"spicecross.resources.{name}")))
        if path.is_dir():
            return path
    except ModuleNotFoundError:
        pass
    return _REPO_ROOT / name


def device_models_dir() -> Path:
    """Return the folder of the built-in device subcircuits."""
    return data_dir("device_models")
