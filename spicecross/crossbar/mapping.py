"""Mapping weight matrices onto crossbars: differential conductance pairs and tiles.

A layer's weights ``W`` (inputs × outputs, the bias as an extra input row) become
two conductances per weight within ``[G_off, G_on]`` (S)::

    k_G = (G_on − G_off) / max|W|        (max over the whole layer, bias row included)
    G+ = G_off + k_G · max(W, 0)         G− = G_off + k_G · max(−W, 0)

The pair sits on adjacent bit lines of one array (columns 2j and 2j + 1). Inputs
``x`` in [0, 1] are applied as voltages ``V = k_V · x`` and the output is
``y = (I+ − I−) / (k_V · k_G)``, which equals ``x · W`` for ideal linear devices.
Layers larger than a tile are split into a grid of tiles; the partial outputs of
the tiles that share columns are added digitally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def check_conductance_range(g_off: float, g_on: float) -> None:
    """Raise ValueError unless 0 < g_off < g_on (S), both finite."""
    if not (np.isfinite(g_off) and np.isfinite(g_on)):
        raise ValueError(f"conductance range G_off={g_off!r} S, G_on={g_on!r} S is not finite")
    if not 0 < g_off < g_on:
        raise ValueError(f"conductance range G_off={g_off!r} S, G_on={g_on!r} S is invalid: it needs "
                         "0 < G_off < G_on, for example G_off = 1e-4 and G_on = 5e-4")


@dataclass(frozen=True)
class DifferentialMapping:
    """Conductances of a weight matrix mapped to differential pairs.

    Attributes:
        conductances: (inputs, 2·outputs), S; column 2j is G+ and column 2j + 1 is G− of output j.
        k_g: conductance per unit weight, S.
        g_off, g_on: the conductance range, S.
    """

    conductances: np.ndarray
    k_g: float
    g_off: float
    g_on: float


def map_differential(weights, g_off: float, g_on: float) -> DifferentialMapping:
    """Map ``weights`` (inputs, outputs) onto differential pairs in [g_off, g_on] (S)."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D (inputs, outputs) array, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or infinite values")
    check_conductance_range(g_off, g_on)
    w_max = float(np.max(np.abs(w)))
    k_g = (g_on - g_off) / w_max if w_max > 0 else 0.0
    g = np.empty((w.shape[0], 2 * w.shape[1]))
    g[:, 0::2] = g_off + k_g * np.maximum(w, 0.0)
    g[:, 1::2] = g_off + k_g * np.maximum(-w, 0.0)
    return DifferentialMapping(np.clip(g, g_off, g_on), k_g, float(g_off), float(g_on))


def differential_output(currents, k_v: float, k_g: float):
    """Return ``y = (I+ − I−)/(k_V·k_G)`` from bit-line currents (…, 2·outputs) in A."""
    return (currents[..., 0::2] - currents[..., 1::2]) / (k_v * k_g)


@dataclass(frozen=True)
class Tile:
    """One tile of a layer: rows ``row_start:row_stop`` and columns ``col_start:col_stop``."""

    row_start: int
    row_stop: int
    col_start: int
    col_stop: int


def tile_grid(rows: int, cols: int, tile_rows: int = 128, tile_cols: int = 128) -> list[Tile]:
    """Split a (rows, cols) array into tiles of at most tile_rows × tile_cols devices.

    Columns come in differential pairs, so ``tile_cols`` is rounded down to an even number
    and a pair is never split between tiles.
    """
    if tile_rows < 1 or tile_cols < 2:
        raise ValueError(f"tile size {tile_rows}x{tile_cols} is invalid: it needs at least 1 row "
                         "and 2 columns (one differential pair)")
    tile_cols -= tile_cols % 2
    return [Tile(r, min(r + tile_rows, rows), c, min(c + tile_cols, cols))
            for r in range(0, rows, tile_rows) for c in range(0, cols, tile_cols)]
