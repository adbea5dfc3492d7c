"""A learned correction on top of a physical surrogate: a small per-column network.

:class:`LearnedCorrectionSurrogate` runs a base surrogate (normally the IR-drop
surrogate with few relaxation sweeps) and multiplies each bit-line current by
``1 + δ``, where δ comes from a network with two hidden layers applied to every column
separately. The network sees dimensionless column features that cost one
matrix product each, so the correction adds little to the base's cost:

1. the base current over the ideal linear current ``Σ_i V_i·G_ij``;
2. ``log1p`` of the bit line's IR-drop strength ``R_bit,total·Σ_i G_ij``;
3. ``log1p`` of the word lines' IR-drop strength, weighted by the inputs;
4. where along the bit line the current enters (0 first row, 1 last row);
5. the column's position (0 first column, 1 last);
6. the mean and 7. the RMS input voltage, over ``V_ref``.

The last layer starts at zero, so an untrained model equals its base. The power
is the base's power scaled by the ratio of corrected to base total current, an
approximation that holds while the correction is small.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spicecross.surrogates.models import SURROGATE_KINDS, CrossbarSurrogate, SurrogateOutput

#: Number of per-column features (see the module docstring).
N_FEATURES = 7


class LearnedCorrectionSurrogate(CrossbarSurrogate):
    """A base surrogate with a per-column multiplicative correction learned from SPICE sweeps.

    Args:
        base: the surrogate whose currents are corrected (its parameters are part of this model).
        hidden: width of the two hidden layers.

    Shape:
        ``v`` (batch, rows) in V and ``g`` (rows, cols) in S give currents (batch, cols) in A
        and power (batch,) in W.
    """

    kind = "learned"

    def __init__(self, base: CrossbarSurrogate, *, hidden: int = 16):
        super().__init__(base.law, base.wiring)
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden={hidden!r} is invalid: give a whole number of units >= 1, such as 16")
        self.base = base
        self.hidden = hidden
        self.net = nn.Sequential(
            nn.Linear(N_FEATURES, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 1),
        ).double()
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.register_buffer("feature_mean", torch.zeros(N_FEATURES, dtype=torch.float64))
        self.register_buffer("feature_scale", torch.ones(N_FEATURES, dtype=torch.float64))
        self._line_cache: dict = {}

    def config(self) -> dict:
        return {**super().config(), "hidden": self.hidden, "base": self.base.config()}

    def _line_resistances(self, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """Total resistance (Ω) of each bit line (with sense resistor) and word line (with driver)."""
        key = (rows, cols)
        if key not in self._line_cache:
            w = self.wiring
            bit = np.broadcast_to(np.asarray(w.r_bit, float), (rows, cols)).sum(axis=0) + np.broadcast_to(
                np.asarray(w.r_sense, float), (cols,)
            )
            word = np.broadcast_to(np.asarray(w.r_word, float), (rows, cols)).sum(axis=1) + np.broadcast_to(
                np.asarray(w.r_source, float), (rows,)
            )
            self._line_cache[key] = (bit.copy(), word.copy())
        return self._line_cache[key]

    def features(self, v: torch.Tensor, g: torch.Tensor, base_currents: torch.Tensor) -> torch.Tensor:
        """Return the per-column features, (batch, cols, N_FEATURES), dimensionless."""
        rows, cols = g.shape
        batch = v.shape[0]
        bit_total, word_total = self._line_resistances(rows, cols)
        bit_total = torch.as_tensor(bit_total, dtype=v.dtype, device=v.device)
        word_total = torch.as_tensor(word_total, dtype=v.dtype, device=v.device)
        tiny = torch.finfo(v.dtype).tiny

        linear = v @ g
        safe_linear = torch.where(linear > 0, linear, torch.ones_like(linear))
        ratio = torch.where(linear > 0, base_currents / safe_linear, torch.ones_like(linear))
        bit_strength = torch.log1p(bit_total * g.sum(dim=0)).expand(batch, cols)
        row_load = word_total * g.sum(dim=1)
        v_sum = v.sum(dim=1, keepdim=True)
        word_strength = torch.log1p((v @ row_load[:, None]) / (v_sum + tiny)).expand(batch, cols)
        position = (
            torch.linspace(0.0, 1.0, rows, dtype=v.dtype, device=v.device)
            if rows > 1
            else torch.zeros(1, dtype=v.dtype, device=v.device)
        )
        centroid = torch.where(linear > 0, ((v * position) @ g) / safe_linear, torch.full_like(linear, 0.5))
        column = (
            torch.linspace(0.0, 1.0, cols, dtype=v.dtype, device=v.device)
            if cols > 1
            else torch.zeros(1, dtype=v.dtype, device=v.device)
        ).expand(batch, cols)
        v_ref = self.law.v_ref
        v_mean = (v.mean(dim=1, keepdim=True) / v_ref).expand(batch, cols)
        v_rms = (torch.sqrt((v * v).mean(dim=1, keepdim=True) + tiny) / v_ref).expand(batch, cols)
        return torch.stack([ratio, bit_strength, word_strength, centroid, column, v_mean, v_rms], dim=2)

    def correction(self, features: torch.Tensor) -> torch.Tensor:
        """Return the relative correction δ of each column, (batch, cols), from its features."""
        weight = self.net[0].weight
        x = (features.to(weight.dtype) - self.feature_mean.to(weight.dtype)) / self.feature_scale.to(
            weight.dtype
        )
        return self.net(x).squeeze(-1).to(features.dtype)

    def forward(self, v, g):
        base = self.base(v, g)
        delta = self.correction(self.features(v, g, base.currents))
        currents = base.currents * (1.0 + delta)
        total = base.currents.sum(dim=1)
        scale = torch.where(
            total != 0,
            currents.sum(dim=1) / torch.where(total != 0, total, torch.ones_like(total)),
            torch.ones_like(total),
        )
        return SurrogateOutput(currents, base.power * scale)


SURROGATE_KINDS.setdefault(LearnedCorrectionSurrogate.kind, LearnedCorrectionSurrogate)
