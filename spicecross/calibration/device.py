"""Device calibration: DC I–V sweeps of one device subcircuit in ngspice, and law fits.

A sweep places one instance of the subcircuit per programmed state in a single
netlist. Every instance hangs between a common swept source and ground behind
its own 0 V source (an ammeter), so one ``.dc`` run returns the I–V curve of
every state. Each state's read conductance ``G = I(V_ref)/V_ref`` (S) is
measured, not assumed, so a user's model whose parameter is only roughly a
conductance is described correctly.

The laws of :mod:`spicecross.devices.laws` are parameterised by that ``G``. A
fit therefore has one or two free parameters, shared by all states: ``n`` (power law),
``v0`` (sinh), ``d_eps`` at a fixed temperature (Poole–Frenkel, whose ``d_eps``
and temperature only act through one product), or a polynomial ``n(G)``
(``power_law_g``, a power law whose nonlinearity depends on the state). Fits are
scipy least squares on currents normalised per state. When no law comes within
``max_residual``, a monotone table of the mean normalised curve is used.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from spicecross.calibration.errors import DeviceModelError, FitResidualWarning
from spicecross.calibration.execution import NetlistExecutor
from spicecross.devices.laws import LAWS, nonlinearity_of_conductance
from spicecross.devices.library import DeviceModel
from spicecross.errors import ConvergenceError, SimulationError
from spicecross.netlist.writer import DEFAULT_OPTIONS
from spicecross.surrogates.law import FittedLaw
from spicecross.units import format_value

logger = logging.getLogger(__name__)

#: Laws that :func:`fit_device_law` can fit, simplest first. ``power_law_g`` is the
#: power law with a polynomial nonlinearity n(G) (see ``nonlinearity_of_conductance``).
FIT_LAWS = ("linear", "power_law", "sinh", "poole_frenkel", "power_law_g")
#: A more complex law is chosen over a simpler one only when its residual is
#: smaller by this factor (plus 1e-6 absolute), so a power-law device is not
#: reported as Poole–Frenkel because of rounding noise.
SIMPLER_LAW_MARGIN = 1.5
#: Maximum number of knots of a fallback table. Longer sweep grids are subsampled.
TABLE_MAX_KNOTS = 81


# ------------------------------------------------------------------ sweeps ----


@dataclass
class DeviceSweep:
    """DC I–V curves of one device subcircuit at several programmed states.

    Attributes:
        device: name of the device model.
        voltages: swept device voltages, (points,), V; they include ``v_ref``.
        currents: current into the device's first pin, (states, points), A.
        conductances: measured read conductance ``I(V_ref)/V_ref`` of each state, (states,), S.
        targets: the conductance each state was programmed for, (states,), S.
        states: the subcircuit's instance parameters of each state.
        v_ref: read voltage, V.
        ngspice_version: version of the ngspice that ran the sweep.
    """

    device: str
    voltages: np.ndarray
    currents: np.ndarray
    conductances: np.ndarray
    targets: np.ndarray
    states: list
    v_ref: float
    ngspice_version: str = ""

    def to_dict(self) -> dict:
        """Return a JSON-ready summary (the curves themselves go to the npz of the report)."""
        return {
            "device": self.device,
            "v_ref_v": self.v_ref,
            "states": len(self.states),
            "voltage_range_v": [float(self.voltages[0]), float(self.voltages[-1])],
            "points": int(self.voltages.size),
            "targets_s": self.targets.tolist(),
            "measured_s": self.conductances.tolist(),
            "ngspice_version": self.ngspice_version,
        }


def sweep_grid(v_ref: float, v_min: float, v_max: float, step: float) -> np.ndarray:
    """Return a voltage grid from about ``v_min`` to ``v_max`` (V), spaced by ``step``, containing ``v_ref``.

    The ends are moved outwards to whole multiples of ``step`` from ``v_ref``.
    """
    if not (step > 0 and v_max > v_min and v_max >= v_ref):
        raise ValueError(
            f"device sweep range v_min={v_min!r} V, v_max={v_max!r} V, step={step!r} V is "
            f"invalid: it needs step > 0 and v_min < v_max with v_max >= v_ref = {v_ref} V"
        )
    low = v_ref - math.ceil((v_ref - v_min) / step - 1e-9) * step
    high = v_ref + math.ceil((v_max - v_ref) / step - 1e-9) * step
    count = int(round((high - low) / step)) + 1
    return low + step * np.arange(count)


def format_device_sweep_netlist(device: DeviceModel, states: list[dict], voltages: np.ndarray) -> str:
    """Format a netlist that sweeps every state of ``device`` over ``voltages`` (V) in one ``.dc`` run.

    Instance ``k`` is ``xdev_k``; its current (A, into its first pin) is the branch
    current of the ammeter ``vam_k``.
    """
    step = float(voltages[1] - voltages[0]) if voltages.size > 1 else 1.0
    lines = [f"spicecross device sweep {device.name}", "* ---- device model"]
    lines += device.subckt_text.strip().splitlines()
    lines += ["", "* ---- one instance per programmed state, each behind a 0 V ammeter", "vin drive 0 0"]
    for k, params in enumerate(states):
        values = " ".join(f"{key}={format_value(float(val))}" for key, val in sorted(params.items()))
        lines.append(f"vam_{k} drive p_{k} 0")
        lines.append(f"xdev_{k} p_{k} 0 {device.subckt_name} {values}".rstrip())
    options = " ".join(f"{key}={format_value(val)}" for key, val in DEFAULT_OPTIONS.items())
    stop = float(voltages[-1]) + 0.25 * step  # a margin so that rounding cannot drop the last point
    lines += [
        "",
        f".options {options}",
        f".dc vin {format_value(float(voltages[0]))} {format_value(stop)} {format_value(step)}",
        ".end",
        "",
    ]
    return "\n".join(lines)


def program_states(device: DeviceModel, targets, state_map=None) -> list[dict]:
    """Return the instance parameters that program ``device`` to each target conductance (S).

    Built-in models and user models with a ``g`` or ``r`` parameter take the target
    directly. A model whose state is another parameter needs ``state_map``
    (a :class:`~spicecross.calibration.state.StateMap`).
    """
    g = np.asarray(targets, dtype=float).reshape(1, -1)
    if state_map is not None:
        device = state_map.device_for(g)
    elif not device.is_builtin and device.conductance_param is None:
        raise ValueError(
            f"device {device.name!r} has no conductance parameter (g or r): build a state map "
            "for its state parameter first (spicecross.calibration.build_state_map), and pass it "
            "as state_map"
        )
    params = device.instance_params(g)
    return [{key: float(value[0, k]) for key, value in params.items()} for k in range(g.shape[1])]


def sweep_device(
    device: DeviceModel,
    targets,
    executor: NetlistExecutor,
    *,
    states: list[dict] | None = None,
    v_min: float | None = None,
    v_max: float | None = None,
    step: float | None = None,
    state_map=None,
) -> DeviceSweep:
    """Sweep ``device`` in ngspice at the programmed states of ``targets`` (S) and measure each state's G.

    Args:
        device: the device model (built-in or a user's subcircuit).
        targets: target read conductances, S.
        executor: where ngspice runs.
        states: instance parameters per state; computed from ``targets`` when omitted.
        v_min, v_max, step: voltage range and spacing, V; default −2·V_ref to 2·V_ref in V_ref/25 steps.
        state_map: state map of a user's model whose state is not ``g`` or ``r``.

    Raises:
        DeviceModelError: ngspice cannot run the model, or a state conducts no current at V_ref.
    """
    from spicecross.calibration.state import check_dc_paths

    v_ref = device.v_ref
    v_max = 2.0 * v_ref if v_max is None else float(v_max)
    v_min = -v_max if v_min is None else float(v_min)
    step = v_ref / 25.0 if step is None else float(step)
    voltages = sweep_grid(v_ref, v_min, v_max, step)
    targets = np.atleast_1d(np.asarray(targets, dtype=float))
    if states is None:
        states = program_states(device, targets, state_map)
    check_dc_paths(device)
    text = format_device_sweep_netlist(device, states, voltages)
    run = run_device_netlist(device, text, executor)
    currents = []
    for k in range(len(states)):
        values = run.vectors.get(f"vam_{k}#branch")
        if values is None or values.size < voltages.size:
            raise DeviceModelError(
                f"ngspice returned {0 if values is None else values.size} of {voltages.size} "
                f"sweep points for state {k} of device {device.name!r}: the DC sweep "
                "stopped early; check the model for discontinuities"
            )
        currents.append(values[: voltages.size])
    currents = np.asarray(currents)
    at_ref = int(round((v_ref - voltages[0]) / (voltages[1] - voltages[0])))
    measured = currents[:, at_ref] / v_ref
    bad = ~(np.isfinite(measured) & (measured > 0))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DeviceModelError(
            f"state {k} of device {device.name!r} ({states[k]}) has read conductance {measured[k]!r} S at "
            f"V_ref = {v_ref} V: a crosspoint device must conduct a positive current at the read voltage; "
            "check the state parameter range and the sign of the model's current"
        )
    if not np.all(np.isfinite(currents)):
        raise DeviceModelError(
            f"device {device.name!r} gives non-finite currents in the sweep from "
            f"{voltages[0]:g} V to {voltages[-1]:g} V: narrow the range or fix the model"
        )
    logger.info(
        "swept device %s: %d states, %d points, G %.3g..%.3g S",
        device.name,
        len(states),
        voltages.size,
        measured.min(),
        measured.max(),
    )
    return DeviceSweep(device.name, voltages, currents, measured, targets, list(states), v_ref, run.version)


def run_device_netlist(device: DeviceModel, text: str, executor: NetlistExecutor):
    """Run a netlist of ``device`` and turn an ngspice failure into a DeviceModelError with the fix."""
    try:
        return executor.run(text)
    except ConvergenceError as exc:
        raise DeviceModelError(
            f"ngspice found no DC solution for device {device.name!r}: a node of the subcircuit may have "
            "no DC path to ground (a state capacitor, for example; hold it with state_node = NAME under "
            "[device]), or the I-V expression has a discontinuity. ngspice output: "
            f"{_first_error(exc)}"
        ) from exc
    except SimulationError as exc:
        output = (exc.output or str(exc)).lower()
        if "no such function" in output or "undefined" in output:
            hint = (
                "the subcircuit calls a function that ngspice 39 does not define (LTspice and HSPICE "
                "functions such as uramp, limit or table need rewriting with ngspice B-source functions, "
                "functions or a .func definition in the file)"
            )
        elif "unknown subckt" in output or "could not find" in output:
            hint = (
                "the subcircuit instantiates a model or subcircuit that is not in its file: put every "
                ".subckt and .model it uses in the same file"
            )
        elif "unknown parameter" in output:
            hint = "an instance parameter is not declared in the .subckt header: add it as NAME=DEFAULT"
        else:
            hint = "run the netlist with 'ngspice -b' to see the full message"
        raise DeviceModelError(
            f"ngspice cannot run device {device.name!r}: {hint}. ngspice output: {_first_error(exc)}"
        ) from exc


def _first_error(exc: SimulationError) -> str:
    lines = [ln.strip() for ln in (exc.output or str(exc)).splitlines() if ln.strip()]
    for line in lines:
        if "error" in line.lower() or "no such" in line.lower() or "singular" in line.lower():
            return line
    return lines[0] if lines else str(exc)


# ---------------------------------------------------------------- law fits ----


@dataclass
class LawCandidate:
    """One law fitted to a device sweep.

    Attributes:
        name: law name (see :data:`FIT_LAWS`) or ``table``.
        law: the fitted law, ready for the surrogates.
        residual: RMS over states of each state's relative RMS current error (1 = 100 %).
        per_state_n: for ``power_law_g``, the nonlinearity fitted to each state.
    """

    name: str
    law: FittedLaw
    residual: float
    per_state_n: list | None = None

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        out = {"name": self.name, "residual": self.residual, "law": self.law.to_dict()}
        if self.per_state_n is not None:
            out["per_state_n"] = list(self.per_state_n)
        return out


@dataclass
class LawFit:
    """The law chosen for a device and every candidate that was fitted.

    Attributes:
        chosen: the law used downstream.
        candidates: every fitted law, by name.
        max_residual: the bound above which a law is not accepted, relative.
        fallback: whether the chosen law is the table because no law fitted.
    """

    chosen: LawCandidate
    candidates: dict = field(default_factory=dict)
    max_residual: float = 0.02
    fallback: bool = False

    @property
    def law(self) -> FittedLaw:
        """The chosen law."""
        return self.chosen.law

    @property
    def residual(self) -> float:
        """Residual of the chosen law, relative."""
        return self.chosen.residual

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        return {
            "chosen": self.chosen.name,
            "residual": self.chosen.residual,
            "law": self.law.to_dict(),
            "max_residual": self.max_residual,
            "table_fallback": self.fallback,
            "candidates": {k: v.to_dict() for k, v in self.candidates.items()},
        }


def law_residual(law: FittedLaw, sweep: DeviceSweep) -> float:
    """Return the RMS over states of each state's relative RMS error of ``law`` against ``sweep``."""
    model = law.current(sweep.voltages[None, :], sweep.conductances[:, None])
    err = np.sum((model - sweep.currents) ** 2, axis=1) / np.sum(sweep.currents**2, axis=1)
    return float(np.sqrt(np.mean(err)))


def _fit_shared(sweep: DeviceSweep, make_law, x0_list, bounds) -> tuple[FittedLaw, float]:
    """Fit the free parameters ``x`` of ``make_law(x)`` by least squares from every start in ``x0_list``."""
    scale = np.sqrt(np.mean(sweep.currents**2, axis=1))[:, None]

    def residuals(x):
        model = make_law(x).current(sweep.voltages[None, :], sweep.conductances[:, None])
        out = ((model - sweep.currents) / scale).ravel()
        return np.where(np.isfinite(out), out, 1e6)

    best = None
    for x0 in x0_list:
        result = least_squares(
            residuals,
            np.atleast_1d(x0),
            bounds=bounds,
            x_scale="jac",
            xtol=1e-12,
            ftol=1e-12,
            gtol=1e-12,
            max_nfev=400,
        )
        if best is None or result.cost < best.cost:
            best = result
    law = make_law(best.x)
    return law, law_residual(law, sweep)


def fit_law(
    sweep: DeviceSweep, name: str, *, temperature: float = 300.0, n_degree: int = 2, n_g_ref: float = 5e-4
) -> LawCandidate:
    """Fit one law of :data:`FIT_LAWS` to ``sweep``.

    Args:
        sweep: the device sweep.
        name: the law.
        temperature: fixed temperature of the Poole–Frenkel law, K.
        n_degree: polynomial degree of n(G) for ``power_law_g``.
        n_g_ref: reference conductance of that polynomial, S.
    """
    v_ref = sweep.v_ref
    if name == "linear":
        law = FittedLaw("linear", v_ref=v_ref)
        return LawCandidate(name, _with_residual(law, sweep), law.residual)
    if name == "power_law":
        law, res = _fit_shared(
            sweep,
            lambda x: FittedLaw("power_law", {"n": 2.0 + float(x[0])}, v_ref=v_ref),
            [0.5, 1.5],
            ([0.0], [np.inf]),
        )
        law.residual = res
        return LawCandidate(name, law, res)
    if name == "sinh":
        law, res = _fit_shared(
            sweep,
            lambda x: FittedLaw("sinh", {"v0": math.exp(float(x[0]))}, v_ref=v_ref),
            [math.log(0.05), math.log(0.2), math.log(1.0)],
            ([-12.0], [12.0]),
        )
        law.residual = res
        return LawCandidate(name, law, res)
    if name == "poole_frenkel":
        law, res = _fit_shared(
            sweep,
            lambda x: FittedLaw(
                "poole_frenkel", {"d_eps": math.exp(float(x[0])), "temperature": temperature}, v_ref=v_ref
            ),
            [math.log(2e-18), math.log(2e-17), math.log(2e-16)],
            ([math.log(1e-24)], [math.log(1e-10)]),
        )
        law.residual = res
        return LawCandidate(name, law, res)
    if name == "power_law_g":
        return _fit_power_law_g(sweep, n_degree, n_g_ref)
    raise ValueError(f"unknown law {name!r} to fit: use one of {list(FIT_LAWS)}")


def _with_residual(law: FittedLaw, sweep: DeviceSweep) -> FittedLaw:
    law.residual = law_residual(law, sweep)
    return law


def _fit_power_law_g(sweep: DeviceSweep, degree: int, g_ref: float) -> LawCandidate:
    """Fit n per state, then a polynomial n(d), d = log10(g_ref/G), by least squares."""
    per_state = []
    for k in range(sweep.conductances.size):
        single = DeviceSweep(
            sweep.device,
            sweep.voltages,
            sweep.currents[k : k + 1],
            sweep.conductances[k : k + 1],
            sweep.targets[k : k + 1],
            sweep.states[k : k + 1],
            sweep.v_ref,
        )
        per_state.append(fit_law(single, "power_law").law.params["n"])
    per_state = np.asarray(per_state)
    d = np.log10(g_ref / sweep.conductances)
    degree = max(0, min(int(degree), np.unique(np.round(d, 9)).size - 1))
    coeffs = np.polynomial.polynomial.polyfit(d, per_state, degree)
    law = FittedLaw(
        "power_law", {}, n_coeffs=[float(c) for c in coeffs], n_g_ref=float(g_ref), v_ref=sweep.v_ref
    )
    _with_residual(law, sweep)
    return LawCandidate("power_law_g", law, law.residual, per_state_n=per_state.tolist())


def fit_table(sweep: DeviceSweep, max_knots: int = TABLE_MAX_KNOTS) -> LawCandidate:
    """Build a monotone table of the mean normalised current ``I/(G·V_ref)`` over the states.

    Knots are the sweep voltages, subsampled to at most ``max_knots`` but always keeping
    the ends, 0 V and ``V_ref``. A running maximum makes the table non-decreasing.
    """
    v = sweep.voltages
    normalised = sweep.currents / (sweep.conductances[:, None] * sweep.v_ref)
    mean = normalised.mean(axis=0)
    keep = np.unique(
        np.concatenate(
            [
                np.linspace(0, v.size - 1, min(max_knots, v.size)).round().astype(int),
                [np.argmin(np.abs(v)), np.argmin(np.abs(v - sweep.v_ref))],
            ]
        )
    )
    knots_v, knots_i = v[keep], np.maximum.accumulate(mean[keep])
    law = FittedLaw("table", v_ref=sweep.v_ref, table_v=knots_v.tolist(), table_i=knots_i.tolist())
    _with_residual(law, sweep)
    return LawCandidate("table", law, law.residual)


def fit_device_law(
    sweep: DeviceSweep,
    laws=("power_law", "sinh", "poole_frenkel"),
    *,
    max_residual: float = 0.02,
    temperature: float = 300.0,
    n_degree: int = 2,
    n_g_ref: float = 5e-4,
) -> LawFit:
    """Fit every law in ``laws`` to ``sweep`` and choose one, or fall back to a monotone table.

    The law with the lowest residual wins, except that a law earlier in ``laws``
    (simpler) is kept while its residual is within :data:`SIMPLER_LAW_MARGIN` of the
    best. When the winner's residual exceeds ``max_residual`` the table is used.
    A :class:`FitResidualWarning` is issued when the result still exceeds ``max_residual``.

    Args:
        sweep: the device sweep.
        laws: candidate laws, simplest first (names from :data:`FIT_LAWS`); one name fits only that law.
        max_residual: relative residual bound (0.02 = 2 %).
        temperature: Poole–Frenkel temperature, K.
        n_degree: polynomial degree of n(G) for ``power_law_g``.
        n_g_ref: reference conductance of n(G), S.
    """
    if isinstance(laws, str):
        laws = (laws,)
    unknown = [name for name in laws if name not in FIT_LAWS and name != "table"]
    if unknown or not laws:
        raise ValueError(f"laws={list(laws)!r} is invalid: choose from {list(FIT_LAWS)} or 'table'")
    if not max_residual > 0:
        raise ValueError(f"max_residual={max_residual!r} is invalid: give a positive fraction such as 0.02")
    candidates = {}
    for name in laws:
        if name == "table":
            continue
        candidates[name] = fit_law(sweep, name, temperature=temperature, n_degree=n_degree, n_g_ref=n_g_ref)
        logger.info("law %s: residual %.3g", name, candidates[name].residual)
    chosen = None
    if candidates:
        best = min(c.residual for c in candidates.values())
        chosen = next(c for c in candidates.values() if c.residual <= SIMPLER_LAW_MARGIN * best + 1e-6)
    fallback = chosen is None or chosen.residual > max_residual
    if fallback:
        table = fit_table(sweep)
        candidates["table"] = table
        if chosen is not None:
            logger.info(
                "no law fits device %s within %.3g (best %s: %.3g); using a table",
                sweep.device,
                max_residual,
                chosen.name,
                chosen.residual,
            )
        chosen = table
    if chosen.residual > max_residual:
        warnings.warn(
            f"the {chosen.name} law fitted to device {sweep.device!r} has a residual of "
            f"{chosen.residual:.2%}, above the bound of {max_residual:.2%}: the device's I-V curve changes "
            "shape between states in a way no single law or table describes; fit a narrower conductance "
            "range, add 'power_law_g' to the candidate laws, or raise max_residual",
            FitResidualWarning,
            stacklevel=2,
        )
    return LawFit(chosen, candidates, float(max_residual), fallback)


def nonlinearity(sweep: DeviceSweep) -> np.ndarray:
    """Return each state's measured nonlinearity ``I(2 V_ref)/I(V_ref)``; NaN if 2·V_ref was not swept."""
    v = sweep.voltages
    k2 = np.flatnonzero(np.isclose(v, 2 * sweep.v_ref, rtol=0, atol=1e-12))
    if k2.size == 0:
        return np.full(sweep.conductances.size, np.nan)
    return sweep.currents[:, k2[0]] / (sweep.conductances * sweep.v_ref)


__all__ = [
    "FIT_LAWS",
    "DeviceSweep",
    "LawCandidate",
    "LawFit",
    "fit_device_law",
    "fit_law",
    "fit_table",
    "format_device_sweep_netlist",
    "law_residual",
    "nonlinearity",
    "program_states",
    "sweep_device",
    "sweep_grid",
    "LAWS",
    "nonlinearity_of_conductance",
]
