"""The surrogate law of the main job: the shipped calibration, or a short ngspice sweep fit.

:func:`surrogate_law` loads the shipped fit of the power-law device with n(G)
(``load_shipped_calibration("power_law_n_of_g")``). When the calibration package
or that result is missing, :func:`fit_power_law_sweep` measures single devices
in ngspice at a few conductances, fits the exponent of each by least squares in
log-log space, and fits n(G) as a quadratic in ``log10(g_ref/G)``.
"""

from __future__ import annotations

import logging

import numpy as np

from spicecross.nn.config import CrossbarConfig
from spicecross.surrogates import FittedLaw

logger = logging.getLogger(__name__)

SHIPPED_LAW = "power_law_n_of_g"


def fit_power_law_sweep(
    crossbar: CrossbarConfig,
    executor,
    *,
    g_min: float,
    g_max: float,
    states: int = 7,
    points: int = 25,
    degree: int = 2,
) -> tuple[FittedLaw, dict]:
    """Fit a power law with n(G) to ngspice I–V sweeps of ``crossbar.device``.

    Args:
        crossbar: its device and read voltages (the sweep covers 0.02·k_V to k_V).
        executor: a :class:`~spicecross.validation.executor.ValidationExecutor`.
        g_min, g_max: conductance range of the devices swept, S (log-spaced).
        states: number of conductances.
        points: voltages per sweep.
        degree: degree of the n(G) polynomial.

    Returns:
        (law, provenance) with the fitted coefficients, their residual and the ngspice version.
    """
    g = np.geomspace(g_min, g_max, states)
    model = crossbar.device.model_for(g[None, :], crossbar.v_ref)
    params = model.instance_params(g[None, :])
    lines = ["spicecross device sweep", model.subckt_text.strip(), "vin a 0 0"]
    for k in range(states):
        values = " ".join(f"{name}={params[name][0, k]:.17g}" for name in sorted(params))
        lines.append(f"vm{k} a m{k} 0")
        lines.append(f"xd{k} m{k} 0 {model.subckt_name} {values}")
    v_lo, v_hi = 0.02 * crossbar.k_v, crossbar.k_v
    step = (v_hi - v_lo) / (points - 1)
    lines += [
        ".options reltol=1e-9 abstol=1e-18",
        f".dc vin {v_lo:.17g} {v_hi + step / 2:.17g} {step:.17g}",
        ".end",
    ]
    run = executor.run_all(["\n".join(lines) + "\n"])[0]
    v = run.vectors["a"][:points]
    exponents = []
    for k in range(states):
        i = run.vectors[f"vm{k}#branch"][:points]
        slope = np.polyfit(np.log(v / crossbar.v_ref), np.log(i / (crossbar.v_ref * g[k])), 1)[0]
        exponents.append(slope)
    n = 2.0 ** np.asarray(exponents)
    g_ref = crossbar.device.n_g_ref
    d = np.log10(g_ref / g)
    coeffs = np.polyfit(d, n, degree)[::-1]
    residual = float(np.sqrt(np.mean((np.polyval(coeffs[::-1], d) - n) ** 2)))
    law = FittedLaw(
        "power_law",
        params={},
        n_coeffs=[float(c) for c in coeffs],
        n_g_ref=g_ref,
        v_ref=crossbar.v_ref,
        residual=residual,
    )
    provenance = {
        "source": "short ngspice sweep",
        "ngspice_version": run.version,
        "conductances_s": g.tolist(),
        "n_measured": n.tolist(),
        "n_coeffs": law.n_coeffs,
        "rms_residual_of_n": residual,
    }
    return law, provenance


def surrogate_law(
    crossbar: CrossbarConfig, executor, *, g_min: float, g_max: float
) -> tuple[FittedLaw, dict]:
    """Return the law the surrogates use, shipped when available, else fitted now; with its provenance.

    The provenance's ``source`` names which one: ``shipped calibration power_law_n_of_g`` or
    ``short ngspice sweep``.
    """
    try:
        from spicecross.calibration import load_shipped_calibration

        law, provenance = load_shipped_calibration(SHIPPED_LAW)
        if not isinstance(law, FittedLaw):
            raise TypeError(f"shipped calibration {SHIPPED_LAW!r} is a {type(law).__name__}, not a law")
        return law, {
            "source": f"shipped calibration {SHIPPED_LAW}",
            "law": law.to_dict(),
            "calibration": provenance,
        }
    except (ImportError, FileNotFoundError, TypeError, ValueError, KeyError) as exc:
        logger.warning(
            "shipped calibration %s not available (%s); fitting the device law from a short "
            "ngspice sweep instead",
            SHIPPED_LAW,
            exc,
        )
    if crossbar.device.law != "power_law":
        return crossbar.device.fitted_law(crossbar.v_ref), {"source": "device law (no fit needed)"}
    law, provenance = fit_power_law_sweep(crossbar, executor, g_min=g_min, g_max=g_max)
    return law, provenance
