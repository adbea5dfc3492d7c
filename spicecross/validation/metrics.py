"""Figures of merit of a circuit-level validation."""

from __future__ import annotations

import numpy as np

#: Read time of one inference used for energy figures unless given, s.
DEFAULT_READ_TIME_S = 10e-9


def nrmse(predicted, reference) -> float:
    """Return RMSE(predicted − reference) / RMS(reference), the calibration stage's definition.

    Returns 0 for two all-zero arrays and ``inf`` when only the reference is zero.
    """
    predicted, reference = np.asarray(predicted, float), np.asarray(reference, float)
    error = float(np.sqrt(np.mean((predicted - reference) ** 2)))
    scale = float(np.sqrt(np.mean(reference**2)))
    if scale == 0:
        return 0.0 if error == 0 else float("inf")
    return error / scale


def accuracy(logits, labels) -> float:
    """Return the fraction of rows of ``logits`` (batch, classes) whose argmax equals ``labels``."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set is undefined: give at least one example")
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def tops_per_watt(operations: int, power_w: float, read_time_s: float = DEFAULT_READ_TIME_S) -> float:
    """Return the array-only energy efficiency in TOPS/W.

    One inference performs ``operations`` operations (a multiply and an add per
    weight) in ``read_time_s`` while the arrays draw ``power_w``, so it costs
    ``power_w·read_time_s`` joules. Drivers, ADCs and digital circuits are not
    included: the figure is an upper bound for a whole chip.
    """
    if not read_time_s > 0:
        raise ValueError(f"read time {read_time_s!r} s is invalid: give a positive time, for example 10e-9")
    energy = power_w * read_time_s
    if energy <= 0:
        return float("inf")
    return operations / energy / 1e12
