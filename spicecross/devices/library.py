"""Device models that can sit at a crosspoint: the built-in laws and users' subcircuits.

A :class:`DeviceModel` is a two-pin ``.subckt`` plus the rule that turns a target
conductance (S, the chord conductance at the read voltage) into the instance
parameters of each device. Built-in models carry a :class:`~spicecross.devices.laws.DeviceLaw`,
so the exact solver and the surrogates can evaluate them in Python too. A user's
model is any two-pin subcircuit; the exact solver cannot evaluate it, ngspice can.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from spicecross.devices.laws import LAWS, V_REF_DEFAULT, DeviceLaw
from spicecross.errors import NetlistError
from spicecross.resources import device_models_dir

#: Law parameter name (Python) → subcircuit parameter name (netlist), per built-in law.
_SUBCKT_PARAM_NAMES = {
    "linear": {},
    "power_law": {"n": "n"},
    "sinh": {"v0": "v0"},
    "poole_frenkel": {"d_eps": "deps", "temperature": "tkel"},
}


@dataclass(frozen=True)
class DeviceModel:
    """A two-pin device subcircuit and how conductances map onto its parameters.

    Attributes:
        name: registry name, such as ``power_law`` or a user's model name.
        subckt_name: name of the ``.subckt`` (lower-case).
        subckt_text: the text that defines it (a whole library file).
        pins: the two pin names, positive (word line) first.
        defaults: the subcircuit's default parameters, as written in its header.
        law: the I–V law of a built-in model; ``None`` for a user's subcircuit.
        params: law parameters (built-in) or fixed instance parameters (user); scalars
            or arrays of the crossbar's shape (rows, cols).
        conductance_param: for a user's model, the instance parameter set from the target
            conductance (``g`` in S, or ``r`` in Ω as 1/G), or ``None``.
        source_path: the file the model was read from, if any.
    """

    name: str
    subckt_name: str
    subckt_text: str
    pins: tuple[str, str]
    defaults: dict
    law: DeviceLaw | None = None
    params: dict = field(default_factory=dict)
    conductance_param: str | None = None
    v_ref: float = V_REF_DEFAULT
    source_path: Path | None = None

    @property
    def is_builtin(self) -> bool:
        """Return whether the model is a built-in law (solvable by the exact engine)."""
        return self.law is not None

    def with_params(self, **params) -> DeviceModel:
        """Return a copy with law or instance parameters replaced (checked)."""
        merged = {**self.params, **params}
        return _checked(self, merged)

    def law_params(self, shape: tuple[int, ...] | None = None) -> dict:
        """Return the law parameters, broadcast to ``shape`` when given."""
        if self.law is None:
            raise NetlistError(
                f"device {self.name!r} is a user subcircuit with no built-in law: "
                "solve it with the ngspice engine, or calibrate a law for it (spicecross calibrate)")
        full = self.law.check_params(self.params)
        if shape is None:
            return full
        return {k: _broadcast_param(self.name, k, v, shape) for k, v in full.items()}

    def instance_params(self, conductances: np.ndarray) -> dict[str, np.ndarray]:
        """Return the subcircuit parameters of every device, each an array shaped like ``conductances``.

        Args:
            conductances: target chord conductances at ``v_ref`` (S), shape (rows, cols).
        """
        g = np.asarray(conductances, dtype=float)
        if self.law is not None:
            names = _SUBCKT_PARAM_NAMES[self.law.name]
            out = {"g": g, "vref": np.full(g.shape, float(self.v_ref))}
            for key, value in self.law_params(g.shape).items():
                out[names[key]] = value
            return out
        out = {k: _broadcast_param(self.name, k, v, g.shape) for k, v in self.params.items()}
        if self.conductance_param == "g":
            out["g"] = g
        elif self.conductance_param == "r":
            out["r"] = 1.0 / g
        return out


def _broadcast_param(device: str, key: str, value, shape: tuple) -> np.ndarray:
    """Broadcast one device parameter to the crossbar shape, or raise ValueError naming it."""
    arr = np.asarray(value, dtype=float)
    try:
        return np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(f"device {device!r} parameter {key!r} has shape {arr.shape}, but the crossbar "
                         f"is {shape}: give a scalar or one value per device, shape {shape}") from None


def _checked(model: DeviceModel, params: dict) -> DeviceModel:
    if model.law is not None:
        model.law.check_params(params)
    else:
        unknown = set(params) - set(model.defaults)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for subcircuit {model.subckt_name!r}: "
                f"its header declares {sorted(model.defaults) or 'no parameters'}")
        for key, value in params.items():
            if not np.all(np.isfinite(np.asarray(value, dtype=float))):
                raise ValueError(f"device {model.name!r} parameter {key}={value!r} is not finite")
    return DeviceModel(model.name, model.subckt_name, model.subckt_text, model.pins,
                       model.defaults, model.law, dict(params), model.conductance_param,
                       model.v_ref, model.source_path)


def _check_v_ref(v_ref: float) -> None:
    """Raise ValueError unless the read voltage ``v_ref`` (V) is finite and positive."""
    if not (np.isfinite(v_ref) and v_ref > 0):
        raise ValueError(f"read voltage v_ref={v_ref!r} V is invalid: give a positive voltage such as 0.25")


def builtin_device(name: str, *, v_ref: float = V_REF_DEFAULT, **params) -> DeviceModel:
    """Return a built-in device model with law parameters ``params``.

    Args:
        name: ``linear``, ``power_law``, ``sinh`` or ``poole_frenkel``.
        v_ref: read voltage (V) at which conductances are defined; must be positive.
        **params: law parameters, scalars or (rows, cols) arrays: ``n`` (power law),
            ``v0`` in V (sinh), ``d_eps`` in F and ``temperature`` in K (Poole–Frenkel).
    """
    if name not in LAWS:
        raise ValueError(
            f"unknown device {name!r}: built-in devices are {sorted(LAWS)}; a user's "
            "subcircuit is loaded with spicecross.devices.load_subckt_device(path)")
    _check_v_ref(v_ref)
    path = device_models_dir() / f"{name}.lib"
    text = path.read_text()
    header = _single_header(text, path)
    model = DeviceModel(name=name, subckt_name=header.name, subckt_text=text,
                        pins=tuple(header.pins), defaults=dict(header.params),
                        law=LAWS[name], params={}, v_ref=float(v_ref), source_path=path)
    return _checked(model, params)


def load_subckt_device(path_or_text: str | Path, *, name: str | None = None,
                       subckt: str | None = None, conductance_param: str | None = "auto",
                       v_ref: float = V_REF_DEFAULT, allow_unsafe: bool = False, **params) -> DeviceModel:
    """Register a user's two-pin ``.subckt`` as a crosspoint device.

    Pins and default parameters are read from the ``.subckt`` header (continuation
    lines included). The first pin connects to the word line, the second to the bit line.

    Args:
        path_or_text: a file path, or the subcircuit text itself.
        name: registry name; defaults to the subcircuit name.
        subckt: which subcircuit to use when the file defines several.
        conductance_param: instance parameter that receives each device's target
            conductance: ``"g"`` (S), ``"r"`` (Ω, set to 1/G), ``None`` (no mapping; give
            the state through ``params``), or ``"auto"``: ``g`` or ``r`` if the header
            declares one.
        v_ref: read voltage (V) at which conductances are defined.
        allow_unsafe: accept a file with ``.control``, ``shell`` or includes outside its folder.
        **params: fixed instance parameters, scalars or (rows, cols) arrays.

    The mapping ``r = 1/G`` is nominal: it gives the device conductance G only if ``r``
    is the whole read resistance. For any other model, map target conductances to the
    state parameter with the calibration stage (``spicecross calibrate``).

    Raises:
        NetlistError: no ``.subckt``, several without ``subckt=``, not exactly two pins, or
            lint errors that would make ngspice fail (mid-line ``*``, LTspice-only functions).
        UnsafeNetlistError: unsafe cards, unless ``allow_unsafe``.
    """
    from spicecross.netlist.parse import read_subckt_header

    path = None
    if isinstance(path_or_text, Path) or (isinstance(path_or_text, str) and "\n" not in path_or_text
                                          and Path(path_or_text).exists()):
        path = Path(path_or_text)
        text = path.read_text()
    elif isinstance(path_or_text, str) and "\n" not in path_or_text and ".subckt" not in path_or_text.lower():
        raise NetlistError(f"device model file {path_or_text!r} not found: give the path of a "
                           "file that contains a two-pin .subckt")
    else:
        text = str(path_or_text)
    _check_device_text(text, path, allow_unsafe)
    headers = read_subckt_header(text)
    where = f"in {path}" if path else "in the given text"
    if not headers:
        raise NetlistError(f"no .subckt found {where}: a device model must define a two-pin subcircuit")
    if subckt is not None:
        chosen = [h for h in headers if h.name == subckt.lower()]
        if not chosen:
            raise NetlistError(f"subcircuit {subckt!r} not found {where}: it defines "
                               f"{[h.name for h in headers]}")
        header = chosen[0]
    elif len(headers) == 1:
        header = headers[0]
    else:
        raise NetlistError(f"{len(headers)} subcircuits {where} ({[h.name for h in headers]}): "
                           "choose one with subckt=NAME (CLI: --subckt NAME)")
    if len(header.pins) != 2:
        raise NetlistError(
            f"subcircuit {header.name!r} {where} has {len(header.pins)} pins {list(header.pins)}: "
            "a crosspoint device needs exactly two (word-line pin first, bit-line pin second); "
            "wrap the model in a two-pin .subckt that ties or biases the other pins")
    defaults = dict(header.params)
    if conductance_param == "auto":
        conductance_param = "g" if "g" in defaults else ("r" if "r" in defaults else None)
        if conductance_param is None:
            warnings.warn(f"subcircuit {header.name!r} has no conductance parameter (g or r): the crossbar's "
                          "conductance matrix is not written into its instances, so set each device's state "
                          "through its parameters, or pass conductance_param=None to say so",
                          DeviceModelWarning, stacklevel=2)
    elif conductance_param is not None and conductance_param not in ("g", "r"):
        raise ValueError(f"conductance_param={conductance_param!r} is invalid: use 'g', 'r', 'auto' or None")
    if conductance_param is not None and conductance_param not in defaults:
        raise NetlistError(
            f"subcircuit {header.name!r} declares no parameter {conductance_param!r}: add "
            f"{conductance_param}=... to its header, or pass conductance_param=None")
    model = DeviceModel(name=name or header.name, subckt_name=header.name, subckt_text=text,
                        pins=tuple(header.pins), defaults=defaults, law=None, params={},
                        conductance_param=conductance_param, v_ref=float(v_ref), source_path=path)
    return _checked(model, params)


class DeviceModelWarning(UserWarning):
    """Warning that a user's device model is usable but may not mean what the caller expects."""


#: Lint codes that make a device file fail in ngspice, and those worth a warning.
_DEVICE_LINT_ERRORS = {"midline-star", "unsupported-function", "unsupported-constant"}
_DEVICE_LINT_WARNINGS = {"milli-ohm-suffix", "zero-resistance", "node-case"}


def _check_device_text(text: str, path: Path | None, allow_unsafe: bool) -> None:
    """Run the safety check and the relevant lint checks on a user's device file."""
    from spicecross.netlist.lint import lint_netlist
    from spicecross.netlist.parse import parse_netlist
    from spicecross.netlist.safety import check_safety

    netlist = parse_netlist(text, path=path, title_line=False)
    folder = path.parent if path is not None else Path.cwd()
    check_safety(netlist, netlist_dir=folder, allowed_dirs=(device_models_dir(),), allow_unsafe=allow_unsafe)
    where = str(path) if path is not None else "device model"
    findings = lint_netlist(netlist)
    errors = [f for f in findings if f.code in _DEVICE_LINT_ERRORS]
    if errors:
        listed = "; ".join(f"{where}: {f.format()}" for f in errors)
        raise NetlistError(f"device model would fail in ngspice: {listed}")
    for finding in findings:
        if finding.code in _DEVICE_LINT_WARNINGS:
            warnings.warn(f"{where}: {finding.format()}", DeviceModelWarning, stacklevel=3)


def get_device(name_or_path: str | Path, **kwargs) -> DeviceModel:
    """Return a built-in device by name, or load a user's subcircuit from a file path.

    A string that names a built-in law (``linear``, ``power_law``, ``sinh``,
    ``poole_frenkel``) returns that law even when a file of the same name exists
    in the current folder. Write ``./linear`` to load such a file. Any other
    string is a file path, whatever its suffix, relative to the current folder.

    Raises:
        ValueError: ``name_or_path`` is neither a built-in name nor an existing file.
    """
    if isinstance(name_or_path, str) and name_or_path in LAWS:
        return builtin_device(name_or_path, **kwargs)
    path = Path(name_or_path)
    if path.is_file():
        return load_subckt_device(path, **kwargs)
    resolved = path.resolve()
    if resolved.is_dir():
        missing = f"{resolved} is a folder, not a file"
    else:
        missing = f"no file {resolved} exists"
    raise ValueError(
        f"unknown device {str(name_or_path)!r}: it is not one of the built-in devices "
        f"({', '.join(sorted(LAWS))}), and {missing}; give a built-in name, or the path of a "
        "file that contains a two-pin .subckt")


class InstanceParamProblem(NamedTuple):
    """An invalid instance parameter of a built-in device subcircuit, with its fix."""

    message: str
    fix: str


@functools.cache
def _builtin_subckt_law_map() -> dict[str, str]:
    laws = {}
    for name in LAWS:
        path = device_models_dir() / f"{name}.lib"
        laws[_single_header(path.read_text(), path).name] = name
    return laws


def builtin_subckt_laws() -> dict[str, str]:
    """Return the law name of each built-in device subcircuit, keyed by subcircuit name.

    For example ``sc_sinh`` maps to ``sinh``. The subcircuit names are read from
    the built-in device files once per process.
    """
    return dict(_builtin_subckt_law_map())


def check_builtin_instance_param(subckt_name: str, param: str,
                                 value: float) -> InstanceParamProblem | None:
    """Check one instance parameter of a built-in device subcircuit, such as ``v0`` of ``sc_sinh``.

    Args:
        subckt_name: subcircuit name in lower case, such as ``sc_sinh``.
        param: parameter name in lower case: ``g`` (S), ``vref`` (V), or a law
            parameter under its subcircuit name: ``n`` (1), ``v0`` (V), ``deps`` (F)
            or ``tkel`` (K).
        value: the parameter value in the unit above.

    Returns:
        What is wrong and how to fix it, or ``None`` when the value is valid, when
        ``subckt_name`` is not a built-in device or when the device has no parameter
        ``param``. Law parameters are checked by :meth:`DeviceLaw.check_params`,
        and ``vref`` by the rule of ``builtin_device(v_ref=...)``.
    """
    law_name = _builtin_subckt_law_map().get(subckt_name)
    if law_name is None:
        return None
    if param == "g":
        if value > 0:
            return None
        return InstanceParamProblem(
            f"conductance g={value:g} S is invalid: a device needs g > 0 S",
            "set g to the device's conductance in S, such as 1e-4; for a device that should "
            "carry little current, use a small positive conductance (G_off)")
    if param == "vref":
        try:
            _check_v_ref(value)
        except ValueError:
            return InstanceParamProblem(f"read voltage vref={value:g} V is invalid: it must be > 0 V",
                                        "give a positive read voltage in V, such as 0.25")
        return None
    return _law_param_problem(law_name, param, float(value))


# A crossbar netlist repeats a few law parameter values on every device, so the
# checks are cached.
@functools.lru_cache(maxsize=4096)
def _law_param_problem(law_name: str, param: str, value: float) -> InstanceParamProblem | None:
    law = LAWS[law_name]
    law_keys = {subckt_key: law_key for law_key, subckt_key in _SUBCKT_PARAM_NAMES[law_name].items()}
    law_key = law_keys.get(param)
    if law_key is None:
        return None
    try:
        law.check_params({law_key: value})
    except ValueError:
        lower, inclusive = law.bounds.get(law_key, (None, True))
        if lower is None:
            rule = "it must be finite"
        else:
            rule = f"it must be {'>=' if inclusive else '>'} {lower:g}"
        return InstanceParamProblem(f"{param}={value:g} is invalid for the {law_name} law: {rule}",
                                    law.fixes.get(law_key, "give a value in the valid range"))
    return None


@dataclass(frozen=True)
class _Header:
    name: str
    pins: tuple
    params: dict


def _single_header(text: str, path: Path) -> _Header:
    # The built-in files are ours and keep their header on one line, so a full
    # netlist parser is not needed here.
    headers = [line.split() for line in text.splitlines() if line.lower().startswith(".subckt")]
    if len(headers) != 1:
        raise NetlistError(f"built-in device file {path} must define exactly one .subckt")
    tokens = headers[0][1:]
    pins = tuple(t.lower() for t in tokens[1:] if "=" not in t)
    params = dict(t.lower().split("=", 1) for t in tokens[1:] if "=" in t)
    return _Header(tokens[0].lower(), pins, {k: float(v) for k, v in params.items()})
