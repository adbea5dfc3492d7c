"""Nonidealities of one simulated chip: device variability, stuck devices and the ADC.

They are drawn once per chip from a seed and stored with the layer, and the same
functions apply them on both paths: :func:`device_conductances` turns the mapped
(target) conductances into the conductances the devices really have, which the
surrogate receives and the netlists are written with; :func:`quantize_currents`
digitises bit-line currents, from the surrogate or from ngspice alike.
"""

from __future__ import annotations

import numpy as np
import torch

from spicecross.nn.config import VariationConfig

#: Codes of the stuck-device mask.
STUCK_NONE, STUCK_ON, STUCK_OFF = 0, 1, 2


def draw_chip(shape: tuple[int, int], variation: VariationConfig, layer_index: int):
    """Draw the variability factors and the stuck mask of one layer's devices.

    Args:
        shape: (rows, cols) of the layer's conductance matrix, bias row and both
            devices of every pair included.
        variation: the chip's settings (its ``seed`` fixes the draw).
        layer_index: position of the layer in the network, so that layers differ.

    Returns:
        (factor, stuck): the conductance factor ``exp(−sigma·z)`` (float64) and the
        stuck codes (int8), both of ``shape``.
    """
    rng = np.random.default_rng([variation.seed, layer_index])
    z = rng.standard_normal(shape)
    factor = np.exp(-variation.sigma * z)
    u = rng.uniform(size=shape)
    stuck = np.full(shape, STUCK_NONE, dtype=np.int8)
    stuck[u < variation.p_stuck_on] = STUCK_ON
    stuck[(u >= variation.p_stuck_on) & (u < variation.p_stuck_on + variation.p_stuck_off)] = STUCK_OFF
    return factor, stuck


def device_conductances(
    g: torch.Tensor, factor: torch.Tensor, stuck: torch.Tensor, g_off: float, g_on: float
) -> torch.Tensor:
    """Return the conductances the devices really have, S.

    A stuck device sits at G_on or G_off whatever was programmed; every other device
    gets its target ``g`` times its variability factor (a lognormal draw of R).

    Shape: ``g``, ``factor`` and ``stuck`` are (rows, cols); so is the result.
    """
    actual = g * factor.to(g.dtype)
    actual = torch.where(stuck == STUCK_ON, torch.full_like(actual, g_on), actual)
    return torch.where(stuck == STUCK_OFF, torch.full_like(actual, g_off), actual)


def adc_full_scale(variation: VariationConfig, law, rows: int, k_v: float, g_on: float) -> float:
    """Return the ADC full-scale current (A) of a tile with ``rows`` word lines.

    It is ``variation.adc_range_a`` when set, else the current of a bit line whose
    devices all sit at G_on with every input at full scale (``rows·I(k_v, G_on)``).
    """
    if variation.adc_range_a is not None:
        return float(variation.adc_range_a)
    return float(rows * law.current(np.float64(k_v), np.float64(g_on)))


def quantize_currents(currents: torch.Tensor, bits: int, full_scale: float) -> torch.Tensor:
    """Digitise bit-line currents with a ``bits``-bit ADC over [0, full_scale] A.

    Currents are rounded to the nearest of ``2**bits`` levels and clipped to the range.
    The gradient passes straight through the rounding (straight-through estimator), so a
    network can be trained with the ADC in its forward pass. ``bits == 0`` returns the input.

    Shape: ``currents`` is (batch, cols); so is the result.
    """
    if bits == 0:
        return currents
    levels = 2**bits - 1
    lsb = full_scale / levels
    q = torch.clamp(torch.round(currents / lsb), 0, levels) * lsb
    return currents + (q - currents).detach()
