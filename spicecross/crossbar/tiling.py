"""Splitting a crossbar that exceeds the tile size into tiles.

Each tile is a crossbar of its own with its own drivers and sense amplifiers:
the inputs of its rows are applied again at its word lines, and the currents of
tiles that share columns are added digitally.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from spicecross.crossbar.mapping import Tile, tile_grid
from spicecross.crossbar.spec import CrossbarSpec


def split_spec(spec: CrossbarSpec, tile_rows: int = 128,
               tile_cols: int = 128) -> Iterator[tuple[Tile, CrossbarSpec]]:
    """Yield each tile of ``spec`` and its own spec.

    Each tile's spec has its conductances, per-device parameters and wires cut out of ``spec``.
    """
    if spec.drive != "west":
        raise ValueError("tiling supports word lines driven at column 0 (drive='west') only")
    for tile in tile_grid(spec.rows, spec.cols, tile_rows, tile_cols):
        rows = slice(tile.row_start, tile.row_stop)
        cols = slice(tile.col_start, tile.col_stop)
        params = {k: (np.asarray(v)[rows, cols] if np.ndim(v) == 2 else v)
                  for k, v in spec.device.params.items()}
        device = spec.device.with_params(**params) if params else spec.device
        yield tile, CrossbarSpec(spec.conductances[rows, cols], device=device, r_word=spec.r_word[rows, cols],
                                 r_bit=spec.r_bit[rows, cols], r_source=spec.r_source[rows],
                                 r_sense=spec.r_sense[cols])
