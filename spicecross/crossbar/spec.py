"""The description of one crossbar array: conductances, device, wires and drivers.

Geometry (drawn in ``docs/geometry.md``): ``rows`` word lines run horizontally and
are driven at column 0 (``drive="west"``) or at both ends (``drive="both"``);
``cols`` bit lines run vertically and are sensed below the last row at virtual
ground, through a 0 V source used as an ammeter. The device at (row i, col j)
connects word-line node (i, j) to bit-line node (i, j). Wire resistance is given
per segment:

* word line i has ``cols`` segments when driven from the west: segment 0 joins the
  driver (after its source resistance) to cell (i, 0), segment k joins cell (i, k-1)
  to cell (i, k). Driving both ends adds segment ``cols`` from cell (i, cols-1) to
  the east driver, so ``r_word`` is (rows, cols) or (rows, cols + 1).
* bit line j has ``rows`` segments: segment k joins cell (k, j) to cell (k+1, j), and
  segment ``rows-1`` joins the last cell to the sense node, so ``r_bit`` is (rows, cols).

A resistance of 0 Ω is an ideal wire: its two nodes are merged, because ngspice
would replace 0 Ω by a small resistance (1 mΩ in ngspice 39, 1e-12 Ω in ngspice 44).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spicecross.devices.library import DeviceModel, builtin_device, get_device

DRIVES = ("west", "both")


def _resistance_array(name: str, value, shape: tuple[int, ...], alt_shape=None) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(shape, float(arr))
    elif arr.shape != shape and (alt_shape is None or arr.shape != alt_shape):
        expected = f"{shape}" + (f" or {alt_shape}" if alt_shape else "")
        raise ValueError(f"{name} has shape {arr.shape}, expected a scalar or an array of shape "
                         f"{expected} (one value per wire segment)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains a non-finite value: every resistance must be a finite "
                         "number of ohms (0 for an ideal wire)")
    if np.any(arr < 0):
        raise ValueError(f"{name} contains a negative resistance ({float(arr[arr < 0].flat[0])!r} Ω): "
                         "resistances must be >= 0 Ω (0 for an ideal wire)")
    return arr


def check_conductances(conductances, name: str = "conductances") -> np.ndarray:
    """Return ``conductances`` as a 2-D float array, or raise ValueError naming the bad value."""
    g = np.asarray(conductances, dtype=float)
    if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D (rows, cols) array with at least one device, "
                         f"got shape {g.shape}")
    bad = ~np.isfinite(g)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{name}[{i}, {j}] = {float(g[i, j])!r} is not finite: conductances are finite "
                         "values in siemens")
    if (g <= 0).any():
        i, j = np.argwhere(g <= 0)[0]
        raise ValueError(f"{name}[{i}, {j}] = {float(g[i, j])!r} S is not positive: every device needs a "
                         "conductance > 0 S (use G_off for a device that should carry little current)")
    return g


def check_voltages(voltages, rows: int) -> np.ndarray:
    """Return input voltages as a (batch, rows) float array, or raise ValueError."""
    v = np.asarray(voltages, dtype=float)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != rows:
        raise ValueError(f"input voltages have shape {np.shape(voltages)}, expected (batch, {rows}) "
                         f"or ({rows},): one voltage per word line")
    if v.shape[0] < 1:
        raise ValueError("input voltages are empty: give at least one input vector")
    if not np.all(np.isfinite(v)):
        b, i = np.argwhere(~np.isfinite(v))[0]
        raise ValueError(f"input voltage [{b}, {i}] = {float(v[b, i])!r} is not finite")
    return v


@dataclass(frozen=True)
class CrossbarSpec:
    """One crossbar array (a tile) with its device model and wiring.

    Attributes:
        conductances: chord conductance of each device at the read voltage, (rows, cols), S.
        device: the device model placed at every crosspoint.
        r_word: word-line segment resistance, Ω: scalar, (rows, cols), or (rows, cols + 1)
            when driven at both ends.
        r_bit: bit-line segment resistance, Ω: scalar or (rows, cols).
        r_source: driver (source) resistance per word-line driver, Ω: scalar or (rows,).
        r_sense: sense resistance per bit line, Ω: scalar or (cols,).
        drive: ``"west"`` (drivers at column 0) or ``"both"`` (drivers at both ends).
    """

    conductances: np.ndarray
    device: DeviceModel = field(default_factory=lambda: builtin_device("linear"))
    r_word: float | np.ndarray = 0.0
    r_bit: float | np.ndarray = 0.0
    r_source: float | np.ndarray = 0.0
    r_sense: float | np.ndarray = 0.0
    drive: str = "west"

    def __post_init__(self):
        g = check_conductances(self.conductances)
        rows, cols = g.shape
        if self.drive not in DRIVES:
            raise ValueError(f"drive={self.drive!r} is invalid: use 'west' (word lines driven at "
                             "column 0) or 'both' (driven at both ends)")
        word_shape = (rows, cols + 1) if self.drive == "both" else (rows, cols)
        r_word = _resistance_array("r_word", self.r_word, word_shape)
        r_bit = _resistance_array("r_bit", self.r_bit, (rows, cols))
        r_source = _resistance_array("r_source", self.r_source, (rows,))
        r_sense = _resistance_array("r_sense", self.r_sense, (cols,))
        if not isinstance(self.device, DeviceModel):
            raise TypeError(f"device must be a DeviceModel, got {type(self.device).__name__}: "
                            "use spicecross.devices.get_device(NAME)")
        # Validate per-device parameter shapes now rather than when writing.
        self.device.instance_params(g)
        for key, value in (("conductances", g), ("r_word", r_word), ("r_bit", r_bit),
                           ("r_source", r_source), ("r_sense", r_sense)):
            value.setflags(write=False)
            object.__setattr__(self, key, value)

    @property
    def rows(self) -> int:
        """Number of word lines."""
        return self.conductances.shape[0]

    @property
    def cols(self) -> int:
        """Number of bit lines."""
        return self.conductances.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.conductances.shape

    @property
    def v_ref(self) -> float:
        """Read voltage (V) at which the conductances are defined."""
        return self.device.v_ref

    def to_dict(self, *, arrays: bool = True) -> dict:
        """Return a JSON-ready description; with ``arrays=False`` only shapes and scalars."""
        def compact(a: np.ndarray):
            if a.size and np.all(a == a.flat[0]):
                return float(a.flat[0])
            return a.tolist() if arrays else {"shape": list(a.shape), "min": float(a.min()),
                                              "max": float(a.max())}

        device_params = {}
        for k, v in self.device.params.items():
            device_params[k] = compact(np.asarray(v, dtype=float))
        return {
            "rows": self.rows,
            "cols": self.cols,
            "drive": self.drive,
            "device": self.device.name,
            "device_builtin": self.device.is_builtin,
            # Built-in models are found by name, so their path (machine-specific) is not stored.
            "device_source": (str(self.device.source_path)
                              if self.device.source_path and not self.device.is_builtin else None),
            "device_params": device_params,
            "conductance_param": self.device.conductance_param,
            "v_ref": self.v_ref,
            "r_word_ohm": compact(self.r_word),
            "r_bit_ohm": compact(self.r_bit),
            "r_source_ohm": compact(self.r_source),
            "r_sense_ohm": compact(self.r_sense),
            "conductances_s": self.conductances.tolist() if arrays else
            {"shape": list(self.shape), "min": float(self.conductances.min()),
             "max": float(self.conductances.max())},
        }

    @classmethod
    def from_dict(cls, data: dict) -> CrossbarSpec:
        """Rebuild a spec written by :meth:`to_dict` (with arrays)."""
        name = data["device"]
        kwargs = {k: np.asarray(v) if isinstance(v, list) else v
                  for k, v in data.get("device_params", {}).items()}
        if data.get("device_builtin", True):
            device = builtin_device(name, v_ref=data.get("v_ref", 0.25), **kwargs)
        else:
            device = get_device(data["device_source"], v_ref=data.get("v_ref", 0.25),
                                conductance_param=data.get("conductance_param", "auto"), **kwargs)
            if device.name != name:
                device = type(device)(**{**device.__dict__, "name": name})
        return cls(conductances=np.asarray(data["conductances_s"], dtype=float), device=device,
                   r_word=np.asarray(data["r_word_ohm"], dtype=float),
                   r_bit=np.asarray(data["r_bit_ohm"], dtype=float),
                   r_source=np.asarray(data["r_source_ohm"], dtype=float),
                   r_sense=np.asarray(data["r_sense_ohm"], dtype=float),
                   drive=data.get("drive", "west"))
