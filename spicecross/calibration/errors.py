"""Errors and warnings of the calibration stage."""

from __future__ import annotations

from spicecross.errors import CalibrationError


class DeviceModelError(CalibrationError):
    """A device subcircuit cannot be calibrated as written (ngspice rejects it, or a node floats in DC)."""


class StateMapError(CalibrationError):
    """A target read conductance cannot be mapped to the state parameter of a user's model."""


class FitResidualWarning(UserWarning):
    """A fitted law or surrogate misses its sweeps by more than the configured bound."""
