"""Surrogate models of a crossbar tile: fast, differentiable stand-ins for the circuit.

Every surrogate is a ``torch.nn.Module`` whose ``forward(v, g)`` takes input
voltages ``v`` (batch, rows) in V and conductances ``g`` (rows, cols) in S and
returns :class:`SurrogateOutput`: bit-line currents (batch, cols) in A and the
power delivered by the drivers (batch,) in W, the same quantities the
simulator reports. The family, from cheapest to most faithful:

* :class:`IdealSurrogate`: ``I = V·G``, linear devices and ideal wires.
* :class:`DeviceOnlySurrogate`: the fitted device law at every crosspoint, ideal wires.
* :class:`IRDropSurrogate`: the fitted law with word-line, bit-line, source and
  sense resistance, solved approximately by a fixed number of differentiable
  relaxation sweeps (cumulative sums along the lines), with fitted corrections.
* :class:`ExactSurrogate`: the exact nodal solution with implicit-function
  gradients (slow; for checks and for circuits with strong IR drop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from spicecross.surrogates.law import FittedLaw


class SurrogateOutput(NamedTuple):
    """Output of a surrogate: ``currents`` (batch, cols) in A and ``power`` (batch,) in W."""

    currents: torch.Tensor
    power: torch.Tensor


@dataclass
class Wiring:
    """Parasitic resistances of a tile, Ω: scalars, or arrays shaped as in CrossbarSpec.

    Attributes:
        r_word: word-line segment resistance (rows, cols).
        r_bit: bit-line segment resistance (rows, cols).
        r_source: driver resistance (rows,).
        r_sense: sense resistance (cols,).
    """

    r_word: float | np.ndarray = 0.0
    r_bit: float | np.ndarray = 0.0
    r_source: float | np.ndarray = 0.0
    r_sense: float | np.ndarray = 0.0

    def to_dict(self) -> dict:
        """Return a JSON-ready description (arrays as nested lists)."""
        return {k: (np.asarray(v).tolist()) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict) -> Wiring:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**{k: (np.asarray(v, dtype=float) if isinstance(v, list) else float(v))
                      for k, v in data.items()})

    @classmethod
    def from_spec(cls, spec) -> Wiring:
        """Take the resistances of a :class:`~spicecross.crossbar.spec.CrossbarSpec`."""
        if spec.drive != "west":
            raise ValueError("surrogates model word lines driven at column 0 only (drive='west')")
        return cls(spec.r_word.copy(), spec.r_bit.copy(), spec.r_source.copy(), spec.r_sense.copy())

    def is_ideal(self) -> bool:
        """Return whether every resistance is zero."""
        return all(np.all(np.asarray(v) == 0) for v in self.__dict__.values())


def _power(v: torch.Tensor, device_currents: torch.Tensor) -> torch.Tensor:
    """Power delivered by the drivers: Σ_i V_i · (current of word line i), W."""
    return torch.sum(v * device_currents.sum(dim=2), dim=1)


class CrossbarSurrogate(nn.Module):
    """Base class: a differentiable model of one crossbar tile.

    Args:
        law: the device law.
        wiring: the tile's parasitic resistances.
    """

    kind = "base"

    def __init__(self, law: FittedLaw, wiring: Wiring | None = None):
        super().__init__()
        self.law = law
        self.wiring = wiring or Wiring()

    def forward(self, v: torch.Tensor, g: torch.Tensor) -> SurrogateOutput:  # pragma: no cover
        raise NotImplementedError

    def config(self) -> dict:
        """Return the JSON-ready configuration that, with the state dict, rebuilds the model."""
        return {"kind": self.kind, "law": self.law.to_dict(), "wiring": self.wiring.to_dict()}


class IdealSurrogate(CrossbarSurrogate):
    """Linear devices with conductance G and ideal wires: ``I = V·G``."""

    kind = "ideal"

    def forward(self, v, g):
        # Power: Σ_i V_i · Σ_j V_i·G_ij.
        return SurrogateOutput(v @ g, torch.sum((v * v) @ g, dim=1))


class DeviceOnlySurrogate(CrossbarSurrogate):
    """The fitted device law at every crosspoint, wires ignored: ``I_j = Σ_i f(V_i, G_ij)``."""

    kind = "device_only"

    def forward(self, v, g):
        device = self.law.current(v[:, :, None].expand(-1, -1, g.shape[1]), g[None])
        return SurrogateOutput(device.sum(dim=1), _power(v, device))


class IRDropSurrogate(CrossbarSurrogate):
    """The fitted law with wire, source and sense resistance, by relaxation sweeps.

    Each sweep recomputes the word-line and bit-line node voltages from the
    present device currents (the current through a word-line segment is the sum of
    the device currents beyond it, and likewise down a bit line), then moves every
    device current towards the law's value at its new voltage, scaled by
    ``1/(1 + G·R_path)`` where ``R_path`` is the wire resistance between the
    device's driver and its sense node. ``log_scale_word`` and ``log_scale_bit``
    scale the wire resistances and are fitted to SPICE sweeps, which absorbs part of
    the error of a finite number of sweeps.

    The iteration converges while the IR drop is moderate (roughly
    ``R_segment·G·rows·cols`` below 1); beyond that the calibration report shows its
    error, and :class:`ExactSurrogate` is the fallback.

    Args:
        law: the device law.
        wiring: the tile's resistances.
        sweeps: number of relaxation sweeps (each costs about one device-only evaluation).
        damping: step factor of each sweep, in (0, 1].
    """

    kind = "ir_drop"

    def __init__(self, law: FittedLaw, wiring: Wiring, *, sweeps: int = 8, damping: float = 1.0):
        super().__init__(law, wiring)
        if sweeps < 0:
            raise ValueError(f"sweeps={sweeps} is invalid: give a number >= 0")
        if not 0 < damping <= 1:
            raise ValueError(f"damping={damping} is invalid: it must be in (0, 1]")
        self.sweeps = int(sweeps)
        self.damping = float(damping)
        self.log_scale_word = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.log_scale_bit = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def config(self) -> dict:
        return {**super().config(), "sweeps": self.sweeps, "damping": self.damping}

    def _resistances(self, rows: int, cols: int, like: torch.Tensor):
        def tensor(value, shape):
            return torch.as_tensor(np.broadcast_to(np.asarray(value, dtype=float), shape).copy(),
                                   dtype=like.dtype, device=like.device)

        w = self.wiring
        r_word = tensor(w.r_word, (rows, cols)) * torch.exp(self.log_scale_word).to(like.dtype)
        r_bit = tensor(w.r_bit, (rows, cols)) * torch.exp(self.log_scale_bit).to(like.dtype)
        return r_word, r_bit, tensor(w.r_source, (rows,)), tensor(w.r_sense, (cols,))

    def relaxation_setup(self, v, g):
        """Return the wire resistances (Ω) and the per-device step factor used by :meth:`sweep`."""
        rows, cols = g.shape
        resistances = self._resistances(rows, cols, v)
        r_word, r_bit, r_source, r_sense = resistances
        # Resistance between each device and its driver/sense ends, for the step scaling.
        r_path = (r_source[:, None] + torch.cumsum(r_word, dim=1)
                  + torch.flip(torch.cumsum(torch.flip(r_bit, [0]), 0), [0]) + r_sense[None, :])
        return resistances, self.damping / (1.0 + g * r_path)

    def initial_currents(self, v, g):
        """Return the device currents without wires (A), the start of the relaxation, (batch, rows, cols)."""
        return self.law.current(v[:, :, None].expand(-1, -1, g.shape[1]), g[None])

    def sweep(self, v, g, device, resistances, step):
        """Return the device currents (A) after one relaxation sweep from ``device``."""
        r_word, r_bit, r_source, r_sense = resistances
        # Word line: segment k carries the currents of columns >= k.
        beyond = torch.flip(torch.cumsum(torch.flip(device, [2]), 2), [2])
        v_word = v[:, :, None] - r_source[None, :, None] * beyond[:, :, :1] \
            - torch.cumsum(r_word[None] * beyond, dim=2)
        # Bit line: segment k (below row k) carries the currents of rows <= k.
        above = torch.cumsum(device, dim=1)
        v_bit = r_sense[None, None, :] * above[:, -1:, :] \
            + torch.flip(torch.cumsum(torch.flip(r_bit[None] * above, [1]), 1), [1])
        return device + step * (self.law.current(v_word - v_bit, g[None]) - device)

    def forward(self, v, g):
        resistances, step = self.relaxation_setup(v, g)
        device = self.initial_currents(v, g)
        for _ in range(self.sweeps):
            device = self.sweep(v, g, device, resistances, step)
        return SurrogateOutput(device.sum(dim=1), _power(v, device))


class ExactSurrogate(CrossbarSurrogate):
    """The exact nodal solution of the tile with implicit-function gradients (float64)."""

    kind = "exact"

    def forward(self, v, g):
        from spicecross.sim.exact_torch import solve_exact_torch

        out = solve_exact_torch(self._spec(g), v, g)
        return SurrogateOutput(out["currents"], out["power"])

    def _spec(self, g):
        from spicecross.crossbar.spec import CrossbarSpec
        from spicecross.devices import builtin_device

        if self.law.name == "table":
            raise ValueError("the exact surrogate needs a built-in law; this one is a table")
        g_np = g.detach().cpu().numpy().astype(float)
        device = builtin_device(self.law.name, v_ref=self.law.v_ref, **self.law.law_params(g_np))
        w = self.wiring
        return CrossbarSpec(g_np, device=device, r_word=w.r_word,
                            r_bit=w.r_bit, r_source=w.r_source, r_sense=w.r_sense)


SURROGATE_KINDS: dict[str, type] = {cls.kind: cls for cls in
                                    (IdealSurrogate, DeviceOnlySurrogate, IRDropSurrogate, ExactSurrogate)}


@dataclass
class SurrogateRecord:
    """A surrogate with the provenance of the sweeps it was fitted on."""

    model: CrossbarSurrogate
    provenance: dict = field(default_factory=dict)
