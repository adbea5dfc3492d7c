"""The TOML description of a calibration run, read with :mod:`tomllib` and checked key by key.

Every table and key is optional except ``[device] name``::

    [calibration]
    name = "quick"            # label of the run (default: the file name)
    seed = 0                  # seed of states and inputs
    output = "runs/calibration/quick"   # report folder (default runs/calibration/NAME)
    nrmse_goal = 0.01         # NRMSE at which a surrogate counts as good enough
    max_cost = 5.0            # most cost, relative to device-only, of a "fast" surrogate
    timeout = 600.0           # wall-time limit of one ngspice run, s

    [device]
    name = "power_law"        # built-in law, or a .subckt file (relative to this file's folder)
    subckt = "my_dev"         # which .subckt of the file, when it defines several
    v_ref = 0.25              # read voltage (V) at which conductances are defined
    params = { n = 2.8 }      # law parameters (built-in) or fixed instance parameters (file)
    n_of_g = { coeffs = [2.0, 0.15, 0.12], g_ref = 5e-4 }   # built-in power law: n per device from G
    state_param = "x0"        # user model: the parameter that sets the state (default: g or r)
    state_range = [0.0, 1.0]  # range searched for it
    state_scale = "linear"    # "log" or "linear"
    state_node = "xs"         # dynamic model: internal node held at state_param (V) for reads
    state_ref = "0"           # node the state voltage is measured against

    [device_sweep]
    g_min = 5e-6              # conductance range of the swept states, S
    g_max = 5e-5
    states = 7                # number of states, log-spaced
    v_max = 0.5               # sweep from v_min to v_max (V), default ±2·v_ref
    v_min = -0.5
    step = 0.01               # V, default v_ref/25
    laws = ["power_law", "sinh", "poole_frenkel"]   # candidates, simplest first; add "power_law_g"
    max_residual = 0.02       # relative residual above which the table is used (and a warning issued)
    temperature = 300.0       # Poole-Frenkel temperature, K
    n_degree = 2              # degree of n(G) for power_law_g
    n_g_ref = 5e-4            # reference conductance of n(G), S

    [tiles]
    rows = 32
    cols = 32
    r_word = 2.0              # word-line segment resistance, ohm
    r_bit = 2.0               # bit-line segment resistance, ohm
    r_source = 0.0            # driver resistance, ohm
    r_sense = 0.0             # sense resistance, ohm
    g_min = 5e-6              # conductance range of the tile states, S
    g_max = 5e-5
    v_max = 0.5               # largest input voltage, V
    train = ["random", "random", "binary", "checkerboard"]   # state kind of each training tile
    heldout = ["random", "log-random"]                      # state kind of each held-out tile
    vectors = 64              # input vectors per training tile
    heldout_vectors = 64      # input vectors per held-out tile (default: vectors)
    inputs = "uniform"        # "uniform", "binary" or "mixed"

    [surrogates]
    names = ["ideal", "device_only", "ir_drop", "learned", "exact"]
    sweep_counts = [1, 2, 4, 8]   # candidate relaxation sweeps of ir_drop
    sweeps_target = 0.005     # training NRMSE at which the smallest sweep count is taken
    learned_hidden = 16
    learned_steps = 400
    cost_batch = 64           # input vectors per timed batch
    cost_repeats = 10         # timed repeats; the minimum is reported
    time_exact = true         # also time the (slow) exact surrogate

    [grid]                    # exact-solver grid; omit the table to skip it
    rows = 32
    cols = 32
    r_wire = [0.5, 1.0, 2.0, 5.0]
    g_ranges = [[1e-6, 1e-5], [5e-6, 5e-5], [1e-5, 1e-4]]
    tiles = 1
    vectors = 8
    names = ["device_only", "ir_drop"]

An unknown key or a value of the wrong type or range raises ValueError naming the
file, the key, the value and the fix.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spicecross.calibration.device import FIT_LAWS
from spicecross.calibration.fit import SURROGATE_NAMES
from spicecross.calibration.tiles import INPUT_KINDS, STATE_KINDS
from spicecross.configkeys import check_keys
from spicecross.devices.laws import LAWS, V_REF_DEFAULT


@dataclass
class DeviceSection:
    """``[device]``: the device model and how its state is set."""

    name: str
    subckt: str | None = None
    v_ref: float = V_REF_DEFAULT
    params: dict = field(default_factory=dict)
    n_of_g: dict | None = None
    state_param: str | None = None
    state_range: list | None = None
    state_scale: str = "log"
    state_node: str | None = None
    state_ref: str = "0"


@dataclass
class DeviceSweepSection:
    """``[device_sweep]``: the I–V sweeps and the law fit."""

    g_min: float = 5e-6
    g_max: float = 5e-5
    states: int = 7
    v_max: float | None = None
    v_min: float | None = None
    step: float | None = None
    laws: list = field(default_factory=lambda: ["power_law", "sinh", "poole_frenkel"])
    max_residual: float = 0.02
    temperature: float = 300.0
    n_degree: int = 2
    n_g_ref: float = 5e-4


@dataclass
class TilesSection:
    """``[tiles]``: the crossbar sweeps that surrogates are fitted to and scored on."""

    rows: int = 32
    cols: int = 32
    r_word: float = 2.0
    r_bit: float = 2.0
    r_source: float = 0.0
    r_sense: float = 0.0
    g_min: float = 5e-6
    g_max: float = 5e-5
    v_max: float = 0.5
    train: list = field(default_factory=lambda: ["random", "random", "binary", "checkerboard"])
    heldout: list = field(default_factory=lambda: ["random", "log-random"])
    vectors: int = 64
    heldout_vectors: int | None = None
    inputs: str = "uniform"


@dataclass
class SurrogatesSection:
    """``[surrogates]``: which surrogates to fit and how to time them."""

    names: list = field(default_factory=lambda: list(SURROGATE_NAMES))
    sweep_counts: list = field(default_factory=lambda: [1, 2, 4, 8])
    sweeps_target: float = 0.005
    learned_hidden: int = 16
    learned_steps: int = 400
    cost_batch: int = 64
    cost_repeats: int = 10
    time_exact: bool = True


@dataclass
class GridSection:
    """``[grid]``: the exact-solver grid over wire resistance × conductance range."""

    rows: int = 32
    cols: int = 32
    r_wire: list = field(default_factory=lambda: [0.5, 1.0, 2.0, 5.0])
    g_ranges: list = field(default_factory=lambda: [[1e-6, 1e-5], [5e-6, 5e-5], [1e-5, 1e-4]])
    tiles: int = 1
    vectors: int = 8
    names: list = field(default_factory=lambda: ["device_only", "ir_drop"])


@dataclass
class CalibrationConfig:
    """A checked calibration run (see the module docstring for the TOML keys)."""

    name: str
    device: DeviceSection
    device_sweep: DeviceSweepSection = field(default_factory=DeviceSweepSection)
    tiles: TilesSection = field(default_factory=TilesSection)
    surrogates: SurrogatesSection = field(default_factory=SurrogatesSection)
    grid: GridSection | None = None
    seed: int = 0
    output: str | None = None
    nrmse_goal: float = 0.01
    max_cost: float = 5.0
    timeout: float = 600.0
    source: str | None = None

    def to_dict(self) -> dict:
        """Return a JSON-ready copy."""
        return asdict(self)


_SECTIONS = {
    "device": DeviceSection,
    "device_sweep": DeviceSweepSection,
    "tiles": TilesSection,
    "surrogates": SurrogatesSection,
    "grid": GridSection,
}
_TOP = {"name", "seed", "output", "nrmse_goal", "max_cost", "timeout"}


def _fail(where: str, key: str, value, fix: str) -> ValueError:
    return ValueError(f"{where}: {key} = {value!r} is invalid: {fix}")


def _section(cls, data: dict, where: str, table: str):
    check_keys(data, cls.__dataclass_fields__, where=where, table=table)
    return cls(**data)


def _positive(where, key, value, integer=False):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (integer and not isinstance(value, int))
        or not value > 0
    ):
        kind = "a whole number" if integer else "a number"
        raise _fail(where, key, value, f"give {kind} > 0")


def parse_config(
    data: dict, *, source: str | Path | None = None, base_dir: Path | None = None
) -> CalibrationConfig:
    """Check a parsed TOML dict and return a :class:`CalibrationConfig`."""
    where = str(source) if source else "calibration config"
    unknown = set(data) - set(_SECTIONS) - {"calibration"}
    if unknown:
        raise ValueError(
            f"{where}: unknown table(s) {sorted(unknown)}; valid tables are "
            f"{sorted(set(_SECTIONS) | {'calibration'})}"
        )
    top = dict(data.get("calibration", {}))
    for key in top:
        if key not in _TOP:
            raise ValueError(f"{where}: unknown key {key!r} in [calibration]; valid keys are {sorted(_TOP)}")
    if "device" not in data or "name" not in data["device"]:
        raise ValueError(
            f"{where}: [device] name is missing: give a built-in law ({sorted(LAWS)}) or a .subckt file"
        )
    device = _section(DeviceSection, data["device"], where, "device")
    if device.name not in LAWS:
        path = Path(device.name)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.exists():
            raise _fail(
                where,
                "[device] name",
                device.name,
                f"it is not a built-in law ({sorted(LAWS)}) and no file {path} exists",
            )
        device.name = str(path.resolve())
    if device.state_scale not in ("log", "linear"):
        raise _fail(where, "[device] state_scale", device.state_scale, "use 'log' or 'linear'")
    if device.state_param and (not isinstance(device.state_range, list) or len(device.state_range) != 2):
        raise _fail(where, "[device] state_range", device.state_range, "give [low, high] for state_param")
    if device.n_of_g is not None and (device.name != "power_law" or "coeffs" not in device.n_of_g):
        raise _fail(
            where,
            "[device] n_of_g",
            device.n_of_g,
            "n_of_g = { coeffs = [...], g_ref = 5e-4 } applies to the built-in power_law only",
        )
    _positive(where, "[device] v_ref", device.v_ref)

    sweep = _section(DeviceSweepSection, data.get("device_sweep", {}), where, "device_sweep")
    for key in ("g_min", "g_max", "max_residual", "temperature", "n_g_ref"):
        _positive(where, f"[device_sweep] {key}", getattr(sweep, key))
    _positive(where, "[device_sweep] states", sweep.states, integer=True)
    if sweep.g_min >= sweep.g_max:
        raise _fail(where, "[device_sweep] g_min", sweep.g_min, f"it must be below g_max = {sweep.g_max}")
    bad = [law for law in sweep.laws if law not in FIT_LAWS and law != "table"]
    if bad or not sweep.laws:
        raise _fail(where, "[device_sweep] laws", sweep.laws, f"choose from {list(FIT_LAWS)} or 'table'")

    tiles = _section(TilesSection, data.get("tiles", {}), where, "tiles")
    if tiles.heldout_vectors is None:
        tiles.heldout_vectors = tiles.vectors
    for key in ("rows", "cols", "vectors", "heldout_vectors"):
        _positive(where, f"[tiles] {key}", getattr(tiles, key), integer=True)
    for key in ("g_min", "g_max", "v_max"):
        _positive(where, f"[tiles] {key}", getattr(tiles, key))
    for key in ("r_word", "r_bit", "r_source", "r_sense"):
        value = getattr(tiles, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise _fail(where, f"[tiles] {key}", value, "give a resistance >= 0 ohm")
    if tiles.g_min >= tiles.g_max:
        raise _fail(where, "[tiles] g_min", tiles.g_min, f"it must be below g_max = {tiles.g_max}")
    for key in ("train", "heldout"):
        kinds = getattr(tiles, key)
        if not kinds or any(k not in STATE_KINDS for k in kinds):
            raise _fail(
                where,
                f"[tiles] {key}",
                kinds,
                f"give a non-empty list of state kinds from {list(STATE_KINDS)}",
            )
    if tiles.inputs not in INPUT_KINDS:
        raise _fail(where, "[tiles] inputs", tiles.inputs, f"use one of {list(INPUT_KINDS)}")

    surrogates = _section(SurrogatesSection, data.get("surrogates", {}), where, "surrogates")
    bad = [n for n in surrogates.names if n not in SURROGATE_NAMES]
    if bad:
        raise _fail(where, "[surrogates] names", surrogates.names, f"choose from {list(SURROGATE_NAMES)}")
    if "device_only" not in surrogates.names:
        surrogates.names = ["device_only", *surrogates.names]  # costs are reported relative to it
    if not surrogates.sweep_counts or any(not isinstance(c, int) or c < 0 for c in surrogates.sweep_counts):
        raise _fail(where, "[surrogates] sweep_counts", surrogates.sweep_counts, "give whole numbers >= 0")

    grid = None
    if "grid" in data:
        grid = _section(GridSection, data["grid"], where, "grid")
        if not grid.r_wire or any(not isinstance(r, (int, float)) or r < 0 for r in grid.r_wire):
            raise _fail(where, "[grid] r_wire", grid.r_wire, "give a list of resistances >= 0 ohm")
        if not grid.g_ranges or any(len(p) != 2 or not 0 < p[0] < p[1] for p in grid.g_ranges):
            raise _fail(
                where,
                "[grid] g_ranges",
                grid.g_ranges,
                "give [[g_min, g_max], ...] with 0 < g_min < g_max (S)",
            )
        bad = [n for n in grid.names if n not in ("ideal", "device_only", "ir_drop", "learned")]
        if bad:
            raise _fail(where, "[grid] names", grid.names, "choose from ideal, device_only, ir_drop, learned")

    name = top.get("name") or (Path(source).stem if source else "calibration")
    for key in ("nrmse_goal", "max_cost", "timeout"):
        if key in top:
            _positive(where, f"[calibration] {key}", top[key])
    return CalibrationConfig(
        name=name,
        device=device,
        device_sweep=sweep,
        tiles=tiles,
        surrogates=surrogates,
        grid=grid,
        seed=int(top.get("seed", 0)),
        output=top.get("output"),
        nrmse_goal=float(top.get("nrmse_goal", 0.01)),
        max_cost=float(top.get("max_cost", 5.0)),
        timeout=float(top.get("timeout", 600.0)),
        source=str(source) if source else None,
    )


def load_config(path: str | Path) -> CalibrationConfig:
    """Read and check a calibration TOML file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a key is unknown or a value is invalid (the message names both).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"calibration config {path} not found")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, source=path, base_dir=path.parent)
