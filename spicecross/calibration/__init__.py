"""Calibration: fit device laws and crossbar surrogates to ngspice sweeps, and score them.

The stages, one module each:

* :mod:`~spicecross.calibration.device`: DC I–V sweeps of a device subcircuit and law fits;
* :mod:`~spicecross.calibration.state`: target conductance → state parameter of a user's model,
  and holding the state node of a dynamic model for DC reads;
* :mod:`~spicecross.calibration.tiles`: crossbar tile sweeps (resumable) as ground truth;
* :mod:`~spicecross.calibration.fit`: fitting the surrogate family;
* :mod:`~spicecross.calibration.score`: NRMSE, power error, cost and the exact-solver grid;
* :mod:`~spicecross.calibration.pipeline` and :mod:`~spicecross.calibration.report`: the
  ``spicecross calibrate`` run and its report folder;
* :mod:`~spicecross.calibration.shipped`: results shipped for training, loadable without SPICE.
"""

from spicecross.calibration.config import CalibrationConfig, load_config, parse_config
from spicecross.calibration.device import (
    DeviceSweep,
    LawFit,
    fit_device_law,
    fit_law,
    fit_table,
    sweep_device,
)
from spicecross.calibration.errors import DeviceModelError, FitResidualWarning, StateMapError
from spicecross.calibration.execution import NetlistExecutor
from spicecross.calibration.fit import fit_family, fit_ir_drop, fit_learned
from spicecross.calibration.pipeline import load_law, run_calibration, save_law, summary_of
from spicecross.calibration.score import check_goal, measure_cost, nrmse, run_grid, score_family
from spicecross.calibration.shipped import list_shipped_calibrations, load_shipped_calibration
from spicecross.calibration.state import StateMap, build_state_map, hold_state_node, load_state_device
from spicecross.calibration.tiles import TileConditions, TileSet, solve_tiles

__all__ = [
    "CalibrationConfig",
    "DeviceModelError",
    "DeviceSweep",
    "FitResidualWarning",
    "LawFit",
    "NetlistExecutor",
    "StateMap",
    "StateMapError",
    "TileConditions",
    "TileSet",
    "build_state_map",
    "check_goal",
    "fit_device_law",
    "fit_family",
    "fit_ir_drop",
    "fit_law",
    "fit_learned",
    "fit_table",
    "hold_state_node",
    "list_shipped_calibrations",
    "load_config",
    "load_law",
    "load_shipped_calibration",
    "load_state_device",
    "measure_cost",
    "nrmse",
    "parse_config",
    "run_calibration",
    "run_grid",
    "save_law",
    "score_family",
    "solve_tiles",
    "summary_of",
    "sweep_device",
]
