"""Mapping a target read conductance onto the state parameter of a user's device model.

Many device models set their state through a parameter that is not a
conductance: a resistance of a nonlinear element, or a state variable ``x0`` in
[0, 1]. A :class:`StateMap` is the measured, monotone relation between that
parameter and the read conductance ``G = I(V_ref)/V_ref`` (S). It is built from
ngspice runs. A coarse grid over the parameter's range comes first. Then, in a
few rounds, the map's guesses for a set of target conductances are simulated and
added to the table, until every guess reads within ``tolerance`` of its target.
This is a root search run on all targets at once. :meth:`StateMap.param_for` then
interpolates monotonically (PCHIP in log G), so a network's conductances can be
written into netlists of that model with :meth:`StateMap.device_for`.

Dynamic models keep their state on a node, often across a capacitor. In a DC
operating point a capacitor is an open circuit, so that node floats and ngspice
silently reads it as 0 V. Calibration freezes the state for reads by holding
the node with a voltage source at the state parameter's value
(:func:`hold_state_node`), in the device sweeps and in crossbar netlists alike.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy.interpolate import PchipInterpolator

from spicecross.calibration.errors import DeviceModelError, StateMapError
from spicecross.calibration.execution import NetlistExecutor
from spicecross.devices.library import DeviceModel
from spicecross.errors import NetlistError

logger = logging.getLogger(__name__)

#: Element name of the source that holds a dynamic model's state node.
HOLD_SOURCE = "vhold_state"
#: Element kinds that add no conductance at their nodes in a DC operating point.
_NO_DC_PATH_KINDS = ("c", "i")


def load_state_device(path_or_text, *, subckt: str | None = None, v_ref: float | None = None,
                      **params) -> DeviceModel:
    """Load a user's subcircuit whose state is set through a parameter, not through ``g`` or ``r``.

    The conductance matrix is not written into such a model's instances, which
    :func:`~spicecross.devices.load_subckt_device` warns about. A state map writes the
    state parameter instead, so that warning is silenced here.
    """
    from spicecross.devices import load_subckt_device
    from spicecross.devices.laws import V_REF_DEFAULT

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no conductance parameter")
        return load_subckt_device(path_or_text, subckt=subckt, conductance_param=None,
                                  v_ref=V_REF_DEFAULT if v_ref is None else v_ref, **params)


def _subckt_of(device: DeviceModel):
    from spicecross.netlist.parse import parse_netlist

    netlist = parse_netlist(device.subckt_text, title_line=False)
    subckt = netlist.subckts.get(device.subckt_name)
    if subckt is None:
        raise DeviceModelError(
            f"subcircuit {device.subckt_name!r} not found in the text of device {device.name!r}"
        )
    return subckt


def floating_nodes(device: DeviceModel) -> list[str]:
    """Return the internal nodes of ``device`` with no DC path: only capacitors or current sources touch them.

    B sources with ``i=``, I sources and the output of G sources inject a current
    that does not depend on the node's own voltage, so they give it no DC path.
    """
    subckt = _subckt_of(device)
    touching: dict[str, list] = {}
    for element in subckt.elements:
        for pos, node in enumerate(element.nodes[:2] if element.kind != "x" else element.nodes):
            touching.setdefault(node, []).append((element, pos))
    pins = set(subckt.pins) | {"0", "gnd"}
    floating = []
    for node, elements in touching.items():
        if node in pins:
            continue
        if all(_gives_no_dc_path(element, pos) for element, pos in elements):
            floating.append(node)
    return sorted(floating)


def _gives_no_dc_path(element, pos: int) -> bool:
    if element.kind in _NO_DC_PATH_KINDS:
        return True
    if element.kind == "g" and pos < 2:
        return True
    return element.kind == "b" and "i" in element.params and "v" not in element.params


def check_dc_paths(device: DeviceModel) -> None:
    """Raise DeviceModelError when an internal node of ``device`` floats in a DC operating point."""
    if device.is_builtin:
        return
    try:
        nodes = floating_nodes(device)
    except NetlistError as exc:
        raise DeviceModelError(f"device {device.name!r} cannot be parsed: {exc}") from exc
    if nodes:
        raise DeviceModelError(
            f"node(s) {nodes} of subcircuit {device.subckt_name!r} have no DC path to ground (only "
            "capacitors or current sources touch them), so a DC read leaves them floating and ngspice "
            "reads them as 0 V. "
            f"If {nodes[0]!r} keeps the device's state, set state_node = {nodes[0]!r} and state_param under "
            "[device] so that calibration holds it at the programmed value; otherwise add a DC path "
            "(for example a 1e12 ohm resistor to ground)"
        )


def hold_state_node(device: DeviceModel, node: str, param: str, ref: str = "0") -> DeviceModel:
    """Return ``device`` with its state node held by a voltage source at parameter ``param`` (V).

    A line ``vhold_state NODE REF {PARAM}`` is added before the subcircuit's ``.ends``.
    The source absorbs whatever current the state equation drives into the node, so
    the state stays at the programmed value for every read.

    Args:
        device: a user's subcircuit device.
        node: the internal node that stores the state.
        param: the instance parameter that holds the programmed state (declared in the header).
        ref: the node the state voltage is measured against (``0``, or a pin).
    """
    node, param, ref = node.lower(), param.lower(), ref.lower()
    subckt = _subckt_of(device)
    nodes = {n for e in subckt.elements for n in e.nodes}
    if node not in nodes:
        raise DeviceModelError(
            f"state_node {node!r} is not a node of subcircuit {device.subckt_name!r}; its "
            f"nodes are {sorted(nodes)}"
        )
    if node in subckt.pins:
        raise DeviceModelError(
            f"state_node {node!r} is a pin of {device.subckt_name!r}: give an internal node"
        )
    if param not in device.defaults:
        raise DeviceModelError(
            f"state_param {param!r} is not declared in the header of {device.subckt_name!r}: "
            f"add {param}=DEFAULT to its .subckt line (it declares {sorted(device.defaults)})"
        )
    lines = device.subckt_text.splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if re.match(rf"\s*\.subckt\s+{re.escape(subckt.raw_name)}\b", line, re.IGNORECASE)
    )
    end = next(i for i in range(start, len(lines)) if re.match(r"\s*\.ends\b", lines[i], re.IGNORECASE))
    hold = [
        f"* spicecross: the state node {node} is held at {param} (V) for DC reads",
        f"{HOLD_SOURCE} {node} {ref} {{{param}}}",
    ]
    text = "\n".join(lines[:end] + hold + lines[end:]) + "\n"
    return replace(device, subckt_text=text)


@dataclass
class StateMap:
    """Measured monotone relation between a device's state parameter and its read conductance.

    Attributes:
        device: the device model (with the state node held, for a dynamic model).
        param: the state parameter's name.
        params: parameter values of the table, sorted, in the parameter's unit.
        conductances: read conductance ``I(V_ref)/V_ref`` at each, S.
        scale: ``log`` (the map interpolates in log of the parameter) or ``linear``.
        max_error: largest relative conductance error of the last verification round.
        hold: how the state is frozen for reads (``None`` for a static model).
    """

    device: DeviceModel
    param: str
    params: np.ndarray
    conductances: np.ndarray
    scale: str = "log"
    max_error: float = float("nan")
    hold: dict | None = None

    def __post_init__(self):
        order = np.argsort(self.conductances)
        g, p = np.asarray(self.conductances, float)[order], np.asarray(self.params, float)[order]
        keep = np.concatenate([[True], np.diff(np.log(g)) > 1e-12])
        self._g, self._p = g[keep], p[keep]
        if self._g.size < 2:
            raise StateMapError(
                f"the state map of {self.device.name!r} needs at least two distinct conductances"
            )
        y = np.log(self._p) if self.scale == "log" else self._p
        self._interp = PchipInterpolator(np.log(self._g), y, extrapolate=False)

    @property
    def g_range(self) -> tuple[float, float]:
        """Smallest and largest conductance the map covers, S."""
        return float(self._g[0]), float(self._g[-1])

    def param_for(self, conductances) -> np.ndarray:
        """Return the state parameter that programs each target read conductance (S).

        Raises:
            StateMapError: a target lies outside the calibrated conductance range.
        """
        g = np.asarray(conductances, dtype=float)
        low, high = self.g_range
        outside = (g < low * (1 - 1e-9)) | (g > high * (1 + 1e-9)) | ~np.isfinite(g)
        if outside.any():
            value = float(g[outside].flat[0])
            raise StateMapError(
                f"target conductance {value!r} S is outside the range {low:.4g}..{high:.4g} S that the "
                f"state map of {self.device.name!r} covers with {self.param} in "
                f"{self.params.min():.4g}..{self.params.max():.4g}: "
                "widen state_range under [device], or map the network onto a narrower conductance range"
            )
        y = self._interp(np.log(np.clip(g, low, high)))
        return np.exp(y) if self.scale == "log" else y

    def device_for(self, conductances) -> DeviceModel:
        """Return the device model with the state parameter of every device set for ``conductances`` (S).

        The result's ``params[param]`` has the shape of ``conductances``, ready for a CrossbarSpec.
        """
        return self.device.with_params(**{self.param: self.param_for(conductances)})

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        return {
            "device": self.device.name,
            "param": self.param,
            "scale": self.scale,
            "params": self._p.tolist(),
            "conductances_s": self._g.tolist(),
            "max_error": self.max_error,
            "hold": self.hold,
            "g_range_s": list(self.g_range),
        }


def _read_conductances(
    device: DeviceModel, param: str, values: np.ndarray, executor: NetlistExecutor
) -> np.ndarray:
    """Measure ``I(V_ref)/V_ref`` (S) of ``device`` with ``param`` at each of ``values`` (one ngspice run)."""
    from spicecross.calibration.device import format_device_sweep_netlist, run_device_netlist

    fixed = {k: float(np.asarray(v)) for k, v in device.params.items() if np.ndim(v) == 0}
    states = [{**fixed, param: float(x)} for x in values]
    v_ref = device.v_ref
    text = format_device_sweep_netlist(device, states, np.array([v_ref, 2 * v_ref]))
    run = run_device_netlist(device, text, executor)
    return np.array([run.vectors[f"vam_{k}#branch"][0] / v_ref for k in range(len(states))])


def build_state_map(
    device: DeviceModel,
    param: str,
    param_range,
    executor: NetlistExecutor,
    *,
    scale: str = "log",
    points: int = 17,
    g_targets=None,
    tolerance: float = 1e-3,
    rounds: int = 4,
    state_node: str | None = None,
    state_ref: str = "0",
) -> StateMap:
    """Measure the read conductance of ``device`` across ``param`` and build a monotone :class:`StateMap`.

    Args:
        device: a user's subcircuit device (``conductance_param=None``).
        param: the instance parameter that sets the state, declared in the ``.subckt`` header.
        param_range: (low, high) of that parameter.
        executor: where ngspice runs.
        scale: ``log`` (grid and interpolation in log of the parameter) or ``linear``.
        points: coarse grid points.
        g_targets: conductances (S) the map must hit within ``tolerance``; 25 log-spaced
            values inside the measured range when omitted.
        tolerance: relative conductance error at which the refinement stops.
        rounds: most refinement rounds (one ngspice run each).
        state_node: internal node of a dynamic model to hold at ``param`` (V) for reads.
        state_ref: the node the state voltage is measured against.

    Raises:
        DeviceModelError: the model fails in ngspice, or a node floats.
        StateMapError: the conductance is not monotone in the parameter, or does not change with it.
    """
    param = param.lower()
    if scale not in ("log", "linear"):
        raise ValueError(f"state scale {scale!r} is invalid: use 'log' or 'linear'")
    low, high = (float(x) for x in param_range)
    if not (np.isfinite(low) and np.isfinite(high) and low < high) or (scale == "log" and low <= 0):
        raise ValueError(
            f"state_range={list(param_range)!r} for {param} is invalid: give [low, high] with "
            f"low < high{' and low > 0 for a log scale' if scale == 'log' else ''}"
        )
    if param not in device.defaults:
        raise DeviceModelError(
            f"state_param {param!r} is not declared in the header of {device.subckt_name!r} "
            f"(it declares {sorted(device.defaults)}): add {param}=DEFAULT to its .subckt line"
        )
    hold = None
    if state_node:
        device = hold_state_node(device, state_node, param, state_ref)
        hold = {
            "method": "voltage source",
            "element": HOLD_SOURCE,
            "node": state_node.lower(),
            "ref": state_ref.lower(),
            "value": f"{{{param}}}",
        }
    check_dc_paths(device)
    grid = np.geomspace(low, high, points) if scale == "log" else np.linspace(low, high, points)
    g = _read_conductances(device, param, grid, executor)
    _check_monotone(device, param, grid, g, state_node)

    table_p, table_g = list(grid), list(g)
    smap = StateMap(device, param, np.array(table_p), np.array(table_g), scale, hold=hold)
    lo_g, hi_g = smap.g_range
    targets = np.geomspace(lo_g, hi_g, 27)[1:-1] if g_targets is None else np.asarray(g_targets, dtype=float)
    error = np.inf
    for round_ in range(rounds):
        guesses = smap.param_for(targets)
        reached = _read_conductances(device, param, guesses, executor)
        error = float(np.max(np.abs(reached / targets - 1)))
        logger.info(
            "state map %s round %d: largest relative conductance error %.2e", device.name, round_ + 1, error
        )
        table_p += list(guesses)
        table_g += list(reached)
        smap = StateMap(device, param, np.array(table_p), np.array(table_g), scale, hold=hold)
        if error <= tolerance:
            break
    smap.max_error = error
    if error > tolerance:
        raise StateMapError(
            f"the state map of {device.name!r} reached a relative conductance error of {error:.2e} "
            f"after {rounds} rounds, above the tolerance {tolerance:g}: the conductance may jump "
            f"with {param}; raise points or rounds, or narrow state_range"
        )
    return smap


def _check_monotone(device, param, grid, g, state_node) -> None:
    spread = g.max() / g.min()
    if spread < 1 + 1e-6:
        hint = (
            ""
            if state_node
            else " The state is probably kept on a node that floats in a DC operating point "
            "(across a capacitor, for example); name it with state_node under [device] so that calibration "
            "holds it at the programmed value."
        )
        raise StateMapError(
            f"the read conductance of {device.name!r} does not change with {param} over "
            f"{grid[0]:g}..{grid[-1]:g} (it stays at {g[0]:.4g} S).{hint}"
        )
    steps = np.diff(g)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        k = int(np.flatnonzero(np.sign(steps) != np.sign(steps[0]))[0])
        raise StateMapError(
            f"the read conductance of {device.name!r} is not monotone in {param}: it turns near "
            f"{param} = {grid[k + 1]:.4g}; narrow state_range to one side of it"
        )
