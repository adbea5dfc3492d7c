"""Current-voltage laws of the built-in two-terminal devices, in numpy and torch.

Every law is parameterised by the device's chord conductance ``G = I(V_ref) / V_ref``
(S) at a read voltage ``V_ref`` (V), so a crossbar's conductance matrix means the
same thing whatever the law. The functions take ``v`` (V) and ``g`` (S) as arrays
that broadcast together, plus law parameters that may be scalars or arrays of the
same shape, and return the current (A) flowing from the positive to the negative
pin. The same code runs on numpy arrays and on torch tensors (differentiable), and
each law also gives ``dI/dV`` (S) in numpy for Newton solvers.

The power law ``I = sign(V)·V_ref·G·(|V|/V_ref)^log2(n)`` describes a device by
its nonlinearity ``n = I(2 V_ref)/I(V_ref)``; n = 2 is an ohmic device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Default read voltage (V) at which a device's conductance is defined.
V_REF_DEFAULT = 0.25
#: Elementary charge (C), exact in SI 2019.
ELEMENTARY_CHARGE = 1.602176634e-19
#: Boltzmann constant (J/K), exact in SI 2019.
BOLTZMANN = 1.380649e-23
#: Offset (V) inside the Poole–Frenkel square root; it keeps dI/dV finite at 0 V.
#: It changes the current by less than 1e-15 relative at any voltage used here.
PF_SQRT_OFFSET = 1e-30


def _backend(x: Any):
    """Return the array module (numpy or torch) that ``x`` belongs to."""
    if type(x).__module__.startswith("torch"):
        import torch
        return torch
    return np


def _sign(x):
    return _backend(x).sign(x)


def _like(value, v):
    """Convert a law parameter to the array type, dtype and device of ``v``."""
    if _backend(v) is np:
        return np.asarray(value, dtype=float)
    import torch
    return torch.as_tensor(value, dtype=v.dtype, device=v.device)


# ---------------------------------------------------------------- linear ----

def linear_current(v, g, *, v_ref=V_REF_DEFAULT):
    """Return the current (A) of a linear resistor of conductance ``g`` (S) at ``v`` (V)."""
    return g * v


def linear_slope(v, g, *, v_ref=V_REF_DEFAULT):
    """Return dI/dV (S) of a linear resistor."""
    return np.broadcast_to(g, np.broadcast_shapes(np.shape(v), np.shape(g))).astype(float)


# ------------------------------------------------------------- power law ----

def power_law_current(v, g, *, n=2.0, v_ref=V_REF_DEFAULT):
    """Return ``I = sign(V)·V_ref·G·(|V|/V_ref)^log2(n)`` (A).

    ``n = I(2 V_ref)/I(V_ref)`` is the nonlinearity (n = 2 is linear, n ≥ 2).
    """
    xp = _backend(v)
    exponent = xp.log2(_like(n, v))
    return _sign(v) * v_ref * g * (xp.abs(v) / v_ref) ** exponent


def power_law_slope(v, g, *, n=2.0, v_ref=V_REF_DEFAULT):
    """Return dI/dV (S) of the power law; at 0 V it is G for n = 2 and 0 for n > 2."""
    exponent = np.log2(n)
    ratio = np.abs(v) / v_ref
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = exponent * g * np.power(ratio, exponent - 1.0)
    # 0**0 is 1 for n = 2; for n > 2 the slope at 0 V is 0.
    return np.where(ratio == 0.0, np.where(np.isclose(exponent, 1.0), g, 0.0) * np.ones_like(slope), slope)


# ------------------------------------------------------------------ sinh ----

def sinh_g0(g, *, v0, v_ref=V_REF_DEFAULT):
    """Return the small-signal conductance g0 (S) at 0 V of a sinh device of chord conductance ``g`` (S)."""
    return g * v_ref / (v0 * np.sinh(v_ref / v0))


def sinh_current(v, g, *, v0=0.25, v_ref=V_REF_DEFAULT):
    """Return ``I = g0·V0·sinh(V/V0)`` (A) with g0 chosen so that I(V_ref) = G·V_ref."""
    xp = _backend(v)
    v0 = _like(v0, v)
    return g * v_ref * xp.sinh(v / v0) / xp.sinh(v_ref / v0)


def sinh_slope(v, g, *, v0=0.25, v_ref=V_REF_DEFAULT):
    """Return dI/dV (S) of the sinh law."""
    return g * v_ref * np.cosh(v / v0) / (v0 * np.sinh(v_ref / v0))


# ---------------------------------------------------------- Poole–Frenkel ----

def poole_frenkel_alpha(d_eps, temperature):
    """Return the field-lowering coefficient ``q·sqrt(q/(π·dε))/(k_B·T)`` (V^-1/2).

    ``d_eps`` is the product of film thickness and permittivity (F), ``temperature`` in K.
    """
    q = ELEMENTARY_CHARGE
    d_eps = np.asarray(d_eps, dtype=float)
    return q * np.sqrt(q / (np.pi * d_eps)) / (BOLTZMANN * np.asarray(temperature, dtype=float))


def poole_frenkel_c(g, *, d_eps, temperature, v_ref=V_REF_DEFAULT):
    """Return the prefactor c (S) that gives chord conductance ``g`` (S) at ``v_ref`` (V)."""
    return g * np.exp(-poole_frenkel_alpha(d_eps, temperature) * np.sqrt(v_ref))


def poole_frenkel_current(v, g, *, d_eps=2e-17, temperature=300.0, v_ref=V_REF_DEFAULT):
    """Return ``I = sign(V)·c·|V|·exp(q·sqrt(q·|V|/(π·dε))/(k_B·T))`` (A), c set from ``g``.

    Written as ``G·V·exp(α(sqrt|V| − sqrt V_ref))``, which is the same current.
    """
    xp = _backend(v)
    alpha = _like(poole_frenkel_alpha(d_eps, temperature), v)
    return g * v * xp.exp(alpha * (xp.sqrt(xp.abs(v) + PF_SQRT_OFFSET) - math.sqrt(v_ref)))


def poole_frenkel_slope(v, g, *, d_eps=2e-17, temperature=300.0, v_ref=V_REF_DEFAULT):
    """Return dI/dV (S) of the Poole–Frenkel law (finite at 0 V)."""
    alpha = poole_frenkel_alpha(d_eps, temperature)
    root = np.sqrt(np.abs(v) + PF_SQRT_OFFSET)
    expo = np.exp(alpha * (root - np.sqrt(v_ref)))
    return g * expo * (1.0 + alpha * np.abs(v) / (2.0 * root))


# -------------------------------------------------------------- registry ----

@dataclass(frozen=True)
class DeviceLaw:
    """A built-in I–V law with its parameters' defaults and valid ranges.

    Attributes:
        name: registry name (``linear``, ``power_law``, ``sinh``, ``poole_frenkel``).
        current: ``current(v, g, **params)`` in numpy or torch, A.
        slope: ``slope(v, g, **params)`` in numpy, dI/dV in S.
        defaults: default law parameters (besides ``g`` and ``v_ref``).
        units: unit of each parameter, for help text.
        bounds: open or closed lower bound of each parameter: ``(value, inclusive)``.
        fixes: what to do when a parameter is out of range.
    """

    name: str
    current: Callable
    slope: Callable
    defaults: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)
    bounds: dict = field(default_factory=dict)
    fixes: dict = field(default_factory=dict)

    def check_params(self, params: dict) -> dict:
        """Return a full parameter dict for this law, or raise ValueError on a bad value."""
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for device {self.name!r}: "
                f"valid parameters are {sorted(self.defaults) or 'none'}")
        full = {**self.defaults, **params}
        for key, value in full.items():
            arr = np.asarray(value, dtype=float)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"device {self.name!r} parameter {key}={value!r} is not finite: "
                                 f"{self.fixes.get(key, 'give a finite number')}")
            lower, inclusive = self.bounds.get(key, (None, True))
            if lower is not None:
                bad = arr < lower if inclusive else arr <= lower
                if np.any(bad):
                    worst = float(arr[bad].flat[0]) if arr.ndim else float(arr)
                    relation = ">=" if inclusive else ">"
                    raise ValueError(
                        f"device {self.name!r} parameter {key}={worst!r} is invalid: it must be "
                        f"{relation} {lower}; {self.fixes.get(key, '')}".rstrip("; "))
        return full


LAWS: dict[str, DeviceLaw] = {
    "linear": DeviceLaw("linear", linear_current, linear_slope),
    "power_law": DeviceLaw(
        "power_law", power_law_current, power_law_slope,
        defaults={"n": 2.0}, units={"n": "1 (I(2 V_ref)/I(V_ref))"},
        bounds={"n": (2.0, True)},
        fixes={"n": "n = I(2 V_ref)/I(V_ref) is 2 for a linear device and larger for a "
                    "superlinear one; values below 2 are not supported"}),
    "sinh": DeviceLaw(
        "sinh", sinh_current, sinh_slope,
        defaults={"v0": 0.25}, units={"v0": "V"}, bounds={"v0": (0.0, False)},
        fixes={"v0": "v0 is the voltage scale of the sinh law; use a positive value such as 0.25"}),
    "poole_frenkel": DeviceLaw(
        "poole_frenkel", poole_frenkel_current, poole_frenkel_slope,
        defaults={"d_eps": 2e-17, "temperature": 300.0},
        units={"d_eps": "F (thickness × permittivity)", "temperature": "K"},
        bounds={"d_eps": (0.0, False), "temperature": (0.0, False)},
        fixes={"d_eps": "d_eps is film thickness times permittivity, for example 2e-17 F "
                        "(n = I(2 V_ref)/I(V_ref) is about 3 at 300 K)",
               "temperature": "give the absolute temperature in kelvin, for example 300"}),
}


def get_law(name: str) -> DeviceLaw:
    """Return the built-in law called ``name``, or raise ValueError listing the valid names."""
    try:
        return LAWS[name]
    except KeyError:
        raise ValueError(f"unknown device law {name!r}: valid names are {sorted(LAWS)}") from None


# ------------------------------------------- conductance-dependent power law ----

def nonlinearity_of_conductance(g, coeffs, g_ref: float = 5e-4):
    """Return the power-law nonlinearity n of devices of conductance ``g`` (S).

    Lower conductance states of a memristor are more nonlinear. The dependence is
    a polynomial in ``d = log10(g_ref / g)``: ``n = c0 + c1·d + c2·d² + …``, floored
    at 2 (a linear device). Works on numpy arrays and torch tensors.

    Args:
        g: conductances, S.
        coeffs: polynomial coefficients ``(c0, c1, …)``.
        g_ref: conductance at which ``d = 0``, S.
    """
    xp = _backend(g)
    d = xp.log10(g_ref / g)
    n = 0.0 * d
    for power, c in enumerate(coeffs):
        n = n + c * d ** power
    return xp.clip(n, 2.0, None) if xp is np else xp.clamp(n, min=2.0)
