"""A linear layer computed by a crossbar: weights as differential conductance pairs.

The layer stores the weights ``W`` (in, out) and the bias ``b`` (out) as ordinary
parameters. In its crossbar forward pass it

1. maps ``[W; b]`` (the bias is an extra row, driven at full input) onto
   differential pairs: ``k_G = (G_on − G_off)/max|[W; b]|``,
   ``G+ = G_off + k_G·max(W, 0)``, ``G− = G_off + k_G·max(−W, 0)``, G+ on bit line 2j
   and G− on bit line 2j + 1;
2. applies the chip's variability and stuck devices;
3. converts inputs x in [0, 1] to read voltages ``V = k_V·x``;
4. runs the surrogate on every tile, digitises each tile's bit-line currents
   (if the chip has an ADC) and adds the partial currents of tiles that share
   bit lines;
5. returns ``y = (I+ − I−)/(k_V·k_G)``, which equals ``x·W + b`` for linear
   devices and ideal wires, and the power the drivers deliver per example.

Gradients flow through every step (the ADC by a straight-through estimator),
so the same layer serves nonideality-aware training and surrogate predictions.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from spicecross.crossbar.mapping import Tile, tile_grid
from spicecross.nn.chip import adc_full_scale, device_conductances, draw_chip, quantize_currents
from spicecross.nn.config import CrossbarConfig
from spicecross.nn.relaxation import truncated_ir_drop
from spicecross.surrogates import CrossbarSurrogate, IRDropSurrogate

logger = logging.getLogger(__name__)


class CrossbarOutput(NamedTuple):
    """Output of a crossbar layer.

    Attributes:
        y: layer output ``(I+ − I−)/(k_V·k_G)``. Shape: (batch, out).
        power: power delivered by the drivers of all tiles, W. Shape: (batch,).
        currents: bit-line currents after the ADC, tiles summed, A. Shape: (batch, 2·out).
    """

    y: torch.Tensor
    power: torch.Tensor
    currents: torch.Tensor


class CrossbarLinear(nn.Module):
    """A fully connected layer mapped onto crossbar tiles.

    Args:
        in_features: inputs of the layer (the bias row is added to the crossbar).
        out_features: outputs; the crossbar has ``2·out_features`` bit lines.
        crossbar: the circuit (power level, device, wires, tiles, chip variation).
        surrogate: the differentiable tile model used by :meth:`forward`; its
            parameters are frozen (they belong to the calibration, not to the weights).
        layer_index: position in the network, which selects this layer's chip draw.
        generator: random generator of the initial weights.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        crossbar: CrossbarConfig,
        surrogate: CrossbarSurrogate,
        *,
        layer_index: int = 0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"layer size {in_features}x{out_features} is invalid: both must be >= 1")
        self.in_features = in_features
        self.out_features = out_features
        self.crossbar = crossbar
        self.layer_index = layer_index
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(
            (torch.rand(in_features, out_features, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        )
        self.bias = nn.Parameter(
            (torch.rand(out_features, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        )
        self.set_surrogate(surrogate)
        factor, stuck = draw_chip(self.shape, crossbar.variation, layer_index)
        self.register_buffer("chip_factor", torch.as_tensor(factor))
        self.register_buffer("chip_stuck", torch.as_tensor(stuck))
        self.tiles: list[Tile] = tile_grid(*self.shape, crossbar.tile_rows, crossbar.tile_cols)
        #: Sweeps of the IR-drop surrogate that autograd records (None: all); see
        #: :func:`~spicecross.nn.relaxation.truncated_ir_drop`. Values are unchanged.
        self.grad_sweeps: int | None = None

    # ----------------------------------------------------------- mapping --

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the conductance matrix: inputs + bias row, two bit lines per output."""
        return self.in_features + 1, 2 * self.out_features

    def set_surrogate(self, surrogate: CrossbarSurrogate) -> None:
        """Use ``surrogate`` (a private copy, parameters frozen) for the crossbar forward pass."""
        surrogate = copy.deepcopy(surrogate)
        for p in surrogate.parameters():
            p.requires_grad_(False)
        self.surrogate = surrogate

    def weight_parameters(self) -> list[nn.Parameter]:
        """Return the trainable parameters (weights and bias), without the surrogate's."""
        return [self.weight, self.bias]

    def augmented_weight(self) -> torch.Tensor:
        """Return ``[W; b]``. Shape: (in + 1, out)."""
        return torch.cat([self.weight, self.bias[None, :]], dim=0)

    def target_conductances(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Map ``[W; b]`` onto differential pairs.

        Returns:
            (g, k_g): g is the programmed conductances in S, shape (in + 1, 2·out), with
            G+ in even and G− in odd columns. k_g is the conductance per unit weight k_G in S.
        """
        w = self.augmented_weight()
        c = self.crossbar
        w_max = torch.clamp(w.abs().max(), min=torch.finfo(w.dtype).tiny)
        k_g = (c.g_on - c.g_off) / w_max
        g_pos = c.g_off + k_g * torch.relu(w)
        g_neg = c.g_off + k_g * torch.relu(-w)
        g = torch.stack([g_pos, g_neg], dim=2).reshape(w.shape[0], 2 * w.shape[1])
        return g, k_g

    def device_conductances(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (conductances the devices really have (S), k_G (S)) after the chip's variation."""
        g, k_g = self.target_conductances()
        if self.crossbar.variation.sigma == 0 and not self.chip_stuck.any():
            return g, k_g
        c = self.crossbar
        return device_conductances(g, self.chip_factor, self.chip_stuck, c.g_off, c.g_on), k_g

    def read_voltages(self, x: torch.Tensor) -> torch.Tensor:
        """Return the word-line voltages ``k_V·[x, 1]`` in V. Shape: (batch, in) → (batch, in + 1)."""
        ones = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
        return self.crossbar.k_v * torch.cat([x, ones], dim=1)

    def adc_scale(self, tile: Tile) -> float:
        """Return the ADC full-scale current (A) of ``tile``."""
        c = self.crossbar
        return adc_full_scale(c.variation, self.surrogate.law, tile.row_stop - tile.row_start, c.k_v, c.g_on)

    def digitize(self, currents: torch.Tensor, tile: Tile) -> torch.Tensor:
        """Apply the chip's ADC to one tile's bit-line currents (A). Shape: (batch, tile cols)."""
        bits = self.crossbar.variation.adc_bits
        if bits == 0:
            return currents
        return quantize_currents(currents, bits, self.adc_scale(tile))

    def assemble(
        self, tile_currents: list[torch.Tensor], k_g: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Digitise and add the tiles' bit-line currents; return (y, summed currents).

        ``tile_currents[t]`` belongs to ``self.tiles[t]``, shape (batch, tile cols), A.
        """
        batch = tile_currents[0].shape[0]
        total = tile_currents[0].new_zeros(batch, self.shape[1])
        parts = []
        for tile, current in zip(self.tiles, tile_currents, strict=True):
            parts.append((tile, self.digitize(current, tile)))
        for tile, current in parts:
            total = total.index_add(
                1, torch.arange(tile.col_start, tile.col_stop, device=total.device), current
            )
        y = (total[:, 0::2] - total[:, 1::2]) / (self.crossbar.k_v * k_g)
        return y, total

    # ----------------------------------------------------------- forward --

    def forward(self, x: torch.Tensor) -> CrossbarOutput:
        """Run the crossbar (through the surrogate) on inputs ``x`` in [0, 1].

        Shape: ``x`` is (batch, in_features); see :class:`CrossbarOutput`.
        """
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"layer input has shape {tuple(x.shape)}, expected (batch, {self.in_features})")
        g, k_g = self.device_conductances()
        v = self.read_voltages(x.to(g.dtype))
        currents, power = [], v.new_zeros(v.shape[0])
        for tile in self.tiles:
            v_tile = v[:, tile.row_start : tile.row_stop]
            g_tile = g[tile.row_start : tile.row_stop, tile.col_start : tile.col_stop]
            if self.grad_sweeps is not None and isinstance(self.surrogate, IRDropSurrogate):
                out = truncated_ir_drop(self.surrogate, v_tile, g_tile, self.grad_sweeps)
            else:
                out = self.surrogate(v_tile, g_tile)
            currents.append(out.currents)
            power = power + out.power
        y, total = self.assemble(currents, k_g)
        return CrossbarOutput(y, power, total)

    def forward_ideal(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x·W + b`` computed digitally (standard training). Shape: (batch, in) → (batch, out)."""
        return x.to(self.weight.dtype) @ self.weight + self.bias

    def extra_repr(self) -> str:
        c = self.crossbar
        return (
            f"in={self.in_features}, out={self.out_features}, G=[{c.g_off:g}, {c.g_on:g}] S, "
            f"tiles={len(self.tiles)}, surrogate={self.surrogate.kind}"
        )

    # ----------------------------------------------------------- export --

    def tile_conductances(self) -> list[tuple[Tile, np.ndarray]]:
        """Return each tile with its devices' actual conductances (S) as float64 numpy arrays."""
        with torch.no_grad():
            g, _ = self.device_conductances()
        g = g.detach().cpu().numpy().astype(float)
        return [(t, g[t.row_start : t.row_stop, t.col_start : t.col_stop]) for t in self.tiles]

    def k_g(self) -> float:
        """Return the layer's conductance per unit weight k_G, S."""
        with torch.no_grad():
            return float(self.target_conductances()[1])
