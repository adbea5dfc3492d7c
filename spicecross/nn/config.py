"""Configuration of crossbar layers: the conductance range, the device, the wires and the tiles.

A :class:`CrossbarConfig` fixes everything about the circuit that a layer is
mapped onto, so that the surrogate in the forward pass and the ngspice netlists
describe the same hardware. One config is one *power level*: the conductance
range [G_off, G_on] (S) sets the currents, and with them the power per example.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from spicecross.configkeys import check_keys
from spicecross.devices import builtin_device
from spicecross.devices.laws import LAWS, nonlinearity_of_conductance
from spicecross.errors import SpicecrossError
from spicecross.surrogates import FittedLaw, Wiring


class ConfigurationError(SpicecrossError, ValueError):
    """A layer, network or run configuration is invalid (for example G_off >= G_on)."""


def check_power_level(g_off: float, g_on: float, name: str = "power level") -> None:
    """Raise ConfigurationError unless 0 < g_off < g_on, both finite, in S."""
    for label, value in (("G_off", g_off), ("G_on", g_on)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigurationError(
                f"{name}: {label}={value!r} S is not a finite number; give "
                "conductances in siemens, for example G_on = 5e-4"
            )
        if value <= 0:
            raise ConfigurationError(
                f"{name}: {label}={value!r} S is not positive; every device needs "
                "a conductance > 0 S, for example G_off = 1e-4 and G_on = 5e-4"
            )
    if g_off >= g_on:
        raise ConfigurationError(
            f"{name}: conductance range G_off={g_off!r} S, G_on={g_on!r} S is "
            "invalid: it needs G_off < G_on (for example G_on/G_off = 5)"
        )


@dataclass(frozen=True)
class DeviceConfig:
    """The device placed at every crosspoint, as ngspice simulates it.

    Attributes:
        law: a built-in law name (``power_law``, ``linear``, ``sinh``, ``poole_frenkel``).
        params: law parameters (scalars), for example ``{"n": 2.5}``.
        n_coeffs: for ``power_law``, coefficients of the nonlinearity n as a polynomial in
            ``log10(n_g_ref / G)`` (see :func:`~spicecross.devices.laws.nonlinearity_of_conductance`),
            so each device's n follows its own conductance. Overrides ``params["n"]``.
        n_g_ref: reference conductance of that polynomial, S.
    """

    law: str = "power_law"
    params: dict = field(default_factory=dict)
    n_coeffs: tuple | None = None
    n_g_ref: float = 5e-4

    def __post_init__(self):
        if self.law not in LAWS:
            raise ConfigurationError(f"device law {self.law!r} is unknown: valid laws are {sorted(LAWS)}")
        if self.n_coeffs is not None:
            if self.law != "power_law":
                raise ConfigurationError(f"n_coeffs applies to the power_law device only, not {self.law!r}")
            object.__setattr__(self, "n_coeffs", tuple(float(c) for c in self.n_coeffs))
        LAWS[self.law].check_params(dict(self.params))

    def params_for(self, g: np.ndarray) -> dict:
        """Return the law parameters of devices of conductance ``g`` (S), per device where n depends on G."""
        if self.n_coeffs is None:
            return dict(self.params)
        return {
            **self.params,
            "n": nonlinearity_of_conductance(np.asarray(g, dtype=float), list(self.n_coeffs), self.n_g_ref),
        }

    def model_for(self, g: np.ndarray, v_ref: float):
        """Return the DeviceModel that ngspice places at devices of conductance ``g`` (S), (rows, cols)."""
        return builtin_device(self.law, v_ref=v_ref, **self.params_for(g))

    def fitted_law(self, v_ref: float) -> FittedLaw:
        """Return this device's law as a surrogate law (exact, not fitted)."""
        return FittedLaw(
            self.law,
            params={k: float(v) for k, v in self.params.items()},
            n_coeffs=list(self.n_coeffs) if self.n_coeffs is not None else None,
            n_g_ref=self.n_g_ref,
            v_ref=v_ref,
        )


@dataclass(frozen=True)
class VariationConfig:
    """Nonidealities of one simulated chip, drawn once from ``seed``.

    Attributes:
        sigma: standard deviation of ln(R) of each device (lognormal device-to-device
            variability); 0 disables it. The device conductance becomes ``G·exp(−sigma·z)``, z ~ N(0, 1).
        p_stuck_on: fraction of devices stuck at G_on.
        p_stuck_off: fraction of devices stuck at G_off.
        adc_bits: resolution of the ADC that digitises each bit-line current; 0 disables it.
        adc_range_a: full-scale current of that ADC, A; ``None`` takes the largest current a
            tile can carry (every input at full scale, every device at G_on).
        seed: seed of the chip's random draws.
    """

    sigma: float = 0.0
    p_stuck_on: float = 0.0
    p_stuck_off: float = 0.0
    adc_bits: int = 0
    adc_range_a: float | None = None
    seed: int = 0

    def __post_init__(self):
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ConfigurationError(
                f"variability sigma={self.sigma!r} is invalid: give sigma >= 0 "
                "(standard deviation of ln R; 0 disables variability)"
            )
        for name in ("p_stuck_on", "p_stuck_off"):
            p = getattr(self, name)
            if not 0 <= p <= 1:
                raise ConfigurationError(f"{name}={p!r} is invalid: give a fraction of devices in [0, 1]")
        if self.p_stuck_on + self.p_stuck_off > 1:
            raise ConfigurationError(
                f"p_stuck_on + p_stuck_off = {self.p_stuck_on + self.p_stuck_off} "
                "exceeds 1: the stuck fractions must add up to at most 1"
            )
        if not isinstance(self.adc_bits, int) or not 0 <= self.adc_bits <= 24:
            raise ConfigurationError(
                f"adc_bits={self.adc_bits!r} is invalid: give 0 (no ADC) or a whole "
                "number of bits from 1 to 24"
            )
        if self.adc_range_a is not None and not (math.isfinite(self.adc_range_a) and self.adc_range_a > 0):
            raise ConfigurationError(
                f"adc_range_a={self.adc_range_a!r} A is invalid: give a positive "
                "full-scale current, or None for the largest current of the tile"
            )

    @property
    def is_ideal(self) -> bool:
        """Whether the chip has no variability, no stuck devices and no ADC."""
        return self.sigma == 0 and self.p_stuck_on == 0 and self.p_stuck_off == 0 and self.adc_bits == 0


@dataclass(frozen=True)
class CrossbarConfig:
    """The circuit a layer is mapped onto (one power level).

    Attributes:
        g_off, g_on: conductance range of the devices, S.
        device: the crosspoint device.
        k_v: input scale: an input x in [0, 1] is applied as the read voltage ``k_v·x``, V.
        v_ref: read voltage at which the conductances are defined, V (``k_v / 2`` by default).
        r_word, r_bit: resistance of one word-line and one bit-line wire segment, Ω.
        r_source, r_sense: driver and sense resistance, Ω.
        tile_rows, tile_cols: the largest array; bigger layers are split into tiles.
        variation: the simulated chip's variability, stuck devices and ADC.
        name: label of the power level in reports.
    """

    g_off: float = 1e-4
    g_on: float = 5e-4
    device: DeviceConfig = field(default_factory=DeviceConfig)
    k_v: float = 0.5
    v_ref: float = 0.25
    r_word: float = 0.0
    r_bit: float = 0.0
    r_source: float = 0.0
    r_sense: float = 0.0
    tile_rows: int = 128
    tile_cols: int = 128
    variation: VariationConfig = field(default_factory=VariationConfig)
    name: str = ""

    def __post_init__(self):
        check_power_level(self.g_off, self.g_on, f"power level {self.name!r}" if self.name else "power level")
        if not (math.isfinite(self.k_v) and self.k_v > 0):
            raise ConfigurationError(
                f"k_v={self.k_v!r} V is invalid: give the positive read voltage of "
                "a full-scale input, for example 0.5"
            )
        if not (math.isfinite(self.v_ref) and self.v_ref > 0):
            raise ConfigurationError(
                f"v_ref={self.v_ref!r} V is invalid: give a positive read voltage, for example 0.25"
            )
        for name in ("r_word", "r_bit", "r_source", "r_sense"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigurationError(
                    f"{name}={value!r} Ω is invalid: give a resistance >= 0 Ω (0 for an ideal wire)"
                )
        if self.tile_rows < 1 or self.tile_cols < 2:
            raise ConfigurationError(
                f"tile size {self.tile_rows}x{self.tile_cols} is invalid: a tile "
                "needs at least 1 row and 2 columns (one differential pair)"
            )

    @property
    def wiring(self) -> Wiring:
        """The wire, source and sense resistances as surrogates take them (scalars, Ω)."""
        return Wiring(self.r_word, self.r_bit, self.r_source, self.r_sense)

    @property
    def has_wires(self) -> bool:
        """Whether any wire, source or sense resistance is non-zero."""
        return any(getattr(self, k) > 0 for k in ("r_word", "r_bit", "r_source", "r_sense"))

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        data = asdict(self)
        data["device"]["n_coeffs"] = list(self.device.n_coeffs) if self.device.n_coeffs else None
        return data

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "crossbar configuration") -> CrossbarConfig:
        """Rebuild a config written by :meth:`to_dict` (or read from the ``[crossbar]`` table of
        the file ``where``); unknown keys raise ConfigurationError."""
        data = dict(data)
        check_keys(data, cls.__dataclass_fields__, where=where, table="crossbar", error=ConfigurationError)
        if isinstance(data.get("device"), dict):
            data["device"] = _build(DeviceConfig, data["device"], "crossbar.device", where)
        if isinstance(data.get("variation"), dict):
            data["variation"] = _build(VariationConfig, data["variation"], "crossbar.variation", where)
        for key in ("g_off", "g_on", "k_v", "v_ref", "r_word", "r_bit", "r_source", "r_sense"):
            if key in data and isinstance(data[key], int) and not isinstance(data[key], bool):
                data[key] = float(data[key])
        return cls(**data)

    def fingerprint(self) -> str:
        """Return a short hash of the configuration (the same circuit gives the same hash)."""
        return config_hash(self.to_dict())


def _build(cls, data: dict, table: str, where: str):
    check_keys(data, cls.__dataclass_fields__, where=where, table=table, error=ConfigurationError)
    return cls(**data)


def config_hash(data: dict) -> str:
    """Return the first 16 hex digits of the SHA-256 of ``data`` as canonical JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=float)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
