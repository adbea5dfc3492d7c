"""Device laws as used by the surrogates: a built-in law with fitted parameters, or a table.

A :class:`FittedLaw` evaluates ``I(V, G)`` in torch (A, for V in V and G in S).
For a built-in law it stores the law's name and parameters, which may be fitted
to ngspice sweeps of any device subcircuit. When no built-in law fits, a
monotone table of the normalised current ``I(V)/(G·V_ref)`` against ``V`` is
used, interpolated linearly (monotone data stay monotone).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spicecross.devices.laws import LAWS, V_REF_DEFAULT, nonlinearity_of_conductance


@dataclass
class FittedLaw:
    """An I–V law ``I(V, G)`` for the surrogates.

    Attributes:
        name: a built-in law name (``linear``, ``power_law``, ``sinh``, ``poole_frenkel``) or ``table``.
        params: the law's parameters (scalars) for a built-in law.
        n_coeffs: for ``power_law``, optional polynomial coefficients of the nonlinearity n as a
            function of each device's conductance (see
            :func:`~spicecross.devices.laws.nonlinearity_of_conductance`); overrides ``params["n"]``.
        n_g_ref: reference conductance of that polynomial, S.
        v_ref: read voltage at which G is defined, V.
        table_v: for ``table``, increasing voltages, V.
        table_i: for ``table``, normalised currents I/(G·V_ref) at ``table_v`` (1 at V_ref).
        residual: relative RMS residual of the fit against the sweeps it was fitted to.
    """

    name: str
    params: dict = field(default_factory=dict)
    n_coeffs: list | None = None
    n_g_ref: float = 5e-4
    v_ref: float = V_REF_DEFAULT
    table_v: list | None = None
    table_i: list | None = None
    residual: float | None = None

    def __post_init__(self):
        if self.name != "table" and self.name not in LAWS:
            raise ValueError(f"unknown law {self.name!r}: use one of {sorted(LAWS)} or 'table'")
        if self.name == "table" and (self.table_v is None or self.table_i is None):
            raise ValueError("a 'table' law needs table_v and table_i")

    def current(self, v, g):
        """Return the device current (A) for voltages ``v`` (V) and conductances ``g`` (S), numpy or torch."""
        if self.name != "table":
            return LAWS[self.name].current(v, g, v_ref=self.v_ref, **self.law_params(g))
        return g * self.v_ref * _interp(v, self.table_v, self.table_i)

    def law_params(self, g) -> dict:
        """Return the law parameters for devices of conductance ``g`` (S); n may depend on g."""
        if self.n_coeffs is None:
            return dict(self.params)
        return {**self.params, "n": nonlinearity_of_conductance(g, self.n_coeffs, self.n_g_ref)}

    def slope(self, v, g):
        """Return dI/dV (S) in numpy."""
        if self.name != "table":
            return LAWS[self.name].slope(v, g, v_ref=self.v_ref, **self.law_params(g))
        tv, ti = np.asarray(self.table_v), np.asarray(self.table_i)
        slopes = np.diff(ti) / np.diff(tv)
        k = np.clip(np.searchsorted(tv, v) - 1, 0, slopes.size - 1)
        return g * self.v_ref * slopes[k]

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        return {"name": self.name, "params": {k: float(v) for k, v in self.params.items()},
                "v_ref": self.v_ref, "table_v": self.table_v, "table_i": self.table_i,
                "n_coeffs": self.n_coeffs, "n_g_ref": self.n_g_ref, "residual": self.residual}

    @classmethod
    def from_dict(cls, data: dict) -> FittedLaw:
        """Rebuild a law from :meth:`to_dict` output."""
        return cls(name=data["name"], params=dict(data.get("params", {})),
                   v_ref=data.get("v_ref", V_REF_DEFAULT), table_v=data.get("table_v"),
                   table_i=data.get("table_i"), n_coeffs=data.get("n_coeffs"),
                   n_g_ref=data.get("n_g_ref", 5e-4), residual=data.get("residual"))


def _interp(v, xs, ys):
    """Linear interpolation with linear extrapolation, in numpy or torch (differentiable in v)."""
    if type(v).__module__.startswith("torch"):
        import torch

        x = torch.as_tensor(xs, dtype=v.dtype, device=v.device)
        y = torch.as_tensor(ys, dtype=v.dtype, device=v.device)
        k = torch.clamp(torch.searchsorted(x, v.detach().contiguous()) - 1, 0, x.numel() - 2)
        x0, x1, y0, y1 = x[k], x[k + 1], y[k], y[k + 1]
        return y0 + (v - x0) * (y1 - y0) / (x1 - x0)
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    k = np.clip(np.searchsorted(x, v) - 1, 0, x.size - 2)
    return y[k] + (v - x[k]) * (y[k + 1] - y[k]) / (x[k + 1] - x[k])
