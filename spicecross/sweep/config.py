"""The TOML description of a sweep, read with :mod:`tomllib` and checked key by key.

A sweep is the Cartesian product of array sizes and wire, source and sense
resistances (the *points*), times conductance states per point, times input
batches per state. Each (point, state, batch) is one job: one ngspice load that
solves a batch of input vectors with a DC sweep. Every key is optional except
``[device] name`` and ``[array] sizes``::

    [sweep]
    name = "example"          # label stored in the manifest (default: the file name)
    seed = 0                  # seed of random states and inputs, integer >= 0
    output = "runs/example"   # store folder, relative to the current directory
    cache = "~/.cache/spicecross/sweep-cache"   # result cache shared by sweeps; false disables it
    save_voltages = false     # also store word- and bit-line node voltages (V) of every vector

    [device]
    name = "sinh"             # linear, power_law, sinh, poole_frenkel, or a .subckt file
                              # (a relative path is resolved against this file's folder)
    v_ref = 0.25              # read voltage (V) at which conductances are defined
    subckt = "my_dev"         # which .subckt of the file, when it defines several
    params = { v0 = 0.15 }    # law parameters (built-in) or instance parameters (file)

    [array]
    sizes = [[16, 16], [32, 32]]   # (rows, cols) pairs; a bare integer N means N x N
    drive = "west"                 # "west" (column 0) or "both" (both ends)
    r_word = [1.0, 2.0]            # word-line segment resistance, ohm (a list is swept)
    r_bit = [1.0]                  # bit-line segment resistance, ohm
    r_source = [0.0]               # driver resistance, ohm
    r_sense = [0.0]                # sense resistance, ohm

    [states]
    kinds = ["random", "checkerboard"]   # random, all-on, all-off, checkerboard, ramp
    count = 2                 # random states per point (structured kinds give one state each)
    g_min = 1e-5              # G_off, S
    g_max = 1e-4              # G_on, S

    [inputs]
    source = "random"         # "random" (uniform in [0, v_max]) or "file"
    v_max = 0.5               # V
    vectors_per_job = 50      # input vectors solved by one ngspice load
    batches = 2               # jobs per state (random inputs only)
    file = "inputs.npy"       # (n, rows) V, .npy or .csv; split into jobs of vectors_per_job

    [ngspice]
    mode = "batch"            # "batch" (the ngspice program) or "shared" (libngspice, local only)
    timeout = 600.0           # wall-time limit of one run, s
    retries = 3               # reruns of a failed job, each with stronger convergence aids
    options = { reltol = 1e-9 }   # .options merged over spicecross's defaults

    [executor]
    workers = 2               # local worker processes
    scheduler = "tcp://127.0.0.1:8786"   # run on this Dask scheduler instead
    connect_timeout = 10.0    # s to wait for the scheduler

An unknown key or an out-of-range value raises ValueError naming the file, the
key, the value and the valid keys or range.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from spicecross.configkeys import check_keys, did_you_mean
from spicecross.devices.laws import LAWS, V_REF_DEFAULT

STATE_KINDS = ("random", "all-on", "all-off", "checkerboard", "ramp")
INPUT_SOURCES = ("random", "file")
MODES = ("batch", "shared")
DRIVES = ("west", "both")

#: ngspice 39 ``.options`` that a sweep may set, with their valid range. ngspice
#: ignores unknown option names without a message, so a misspelt option would
#: silently not apply: the names are checked here. Integer options are marked True.
NGSPICE_OPTIONS = {
    "reltol": (0.0, 1.0, False), "abstol": (0.0, 1.0, False), "vntol": (0.0, 1.0, False),
    "chgtol": (0.0, 1.0, False), "gmin": (0.0, 1.0, False), "pivtol": (0.0, 1.0, False),
    "pivrel": (0.0, 1.0, False), "itl1": (1, 1e6, True), "itl2": (1, 1e6, True),
    "gminsteps": (0, 1e4, True), "srcsteps": (0, 1e4, True), "temp": (-273.15, 1e4, False),
    "tnom": (-273.15, 1e4, False), "gshunt": (0.0, 1.0, False),
}


def default_cache_dir() -> Path:
    """Return the default result cache folder: ``$XDG_CACHE_HOME/spicecross/sweep-cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spicecross" / "sweep-cache"


@dataclass(frozen=True)
class DeviceConfig:
    """The device at every crosspoint.

    Attributes:
        name: a built-in law name, or the absolute path of a ``.subckt`` file.
        params: law parameters (built-in) or fixed instance parameters (file).
        v_ref: read voltage at which conductances are defined, V.
        subckt: which subcircuit of the file to use, or None.
    """

    name: str
    params: dict = field(default_factory=dict)
    v_ref: float = V_REF_DEFAULT
    subckt: str | None = None

    @property
    def is_builtin(self) -> bool:
        """Whether the device is one of spicecross's built-in laws."""
        return self.name in LAWS


@dataclass(frozen=True)
class SweepConfig:
    """A checked sweep description (see the module docstring for the TOML keys).

    Resistances are in Ω, conductances in S, voltages in V, times in s.
    """

    device: DeviceConfig
    sizes: tuple
    name: str = "sweep"
    seed: int = 0
    drive: str = "west"
    r_word: tuple = (0.0,)
    r_bit: tuple = (0.0,)
    r_source: tuple = (0.0,)
    r_sense: tuple = (0.0,)
    state_kinds: tuple = ("random",)
    states_per_point: int = 1
    g_min: float = 1e-5
    g_max: float = 1e-4
    input_source: str = "random"
    v_max: float = 0.5
    vectors_per_job: int = 50
    batches: int = 1
    input_file: Path | None = None
    mode: str = "batch"
    options: dict = field(default_factory=dict)
    timeout: float = 600.0
    retries: int = 3
    workers: int = 2
    scheduler: str | None = None
    connect_timeout: float = 10.0
    output: Path | None = None
    cache: Path | None = field(default_factory=default_cache_dir)
    save_voltages: bool = False
    source: Path | None = None

    def to_dict(self) -> dict:
        """Return a JSON-ready copy, stored in the sweep's manifest."""
        return {
            "name": self.name, "seed": self.seed,
            "device": {"name": self.device.name, "params": dict(self.device.params),
                       "v_ref": self.device.v_ref, "subckt": self.device.subckt},
            "sizes": [list(s) for s in self.sizes], "drive": self.drive,
            "r_word_ohm": list(self.r_word), "r_bit_ohm": list(self.r_bit),
            "r_source_ohm": list(self.r_source), "r_sense_ohm": list(self.r_sense),
            "state_kinds": list(self.state_kinds), "states_per_point": self.states_per_point,
            "g_min_s": self.g_min, "g_max_s": self.g_max, "input_source": self.input_source,
            "v_max_v": self.v_max, "vectors_per_job": self.vectors_per_job, "batches": self.batches,
            "input_file": str(self.input_file) if self.input_file else None,
            "mode": self.mode, "options": dict(self.options), "timeout_s": self.timeout,
            "retries": self.retries, "save_voltages": self.save_voltages,
            "source": str(self.source) if self.source else None,
        }


# ------------------------------------------------------------- checking ----

class _Table:
    """One TOML table: typed getters that name the file, table and key in every error."""

    def __init__(self, data: dict, table: str, where: str):
        if not isinstance(data, dict):
            raise ValueError(f"{where}: [{table}] must be a table, got {data!r}")
        self.data = dict(data)
        self.table = table
        self.where = where

    def key_name(self, key: str) -> str:
        return f"[{self.table}] {key}" if self.table else key

    def fail(self, key: str, value, expected: str) -> ValueError:
        return ValueError(f"{self.where}: {self.key_name(key)} = {value!r} is invalid: {expected}")

    def check_unknown(self, valid: tuple) -> None:
        check_keys(self.data, valid, where=self.where, table=self.table)

    def number(self, key: str, default, *, low=None, high=None, low_open=False, integer=False,
               unit: str = ""):
        value = self.data.get(key, default)
        return check_number(value, key, self, low=low, high=high, low_open=low_open, integer=integer,
                            unit=unit)

    def number_list(self, key: str, default, *, low=0.0, unit: str = "") -> tuple:
        value = self.data.get(key, default)
        values = value if isinstance(value, list) else [value]
        if not values:
            raise self.fail(key, value, "give at least one value")
        checked = (check_number(v, key, self, low=low, unit=unit) for v in values)
        return tuple(dict.fromkeys(checked))

    def choice(self, key: str, default: str, choices: tuple) -> str:
        value = self.data.get(key, default)
        if value not in choices:
            raise ValueError(f"{self.where}: {self.key_name(key)} = {value!r} is invalid"
                             f"{did_you_mean(str(value), choices)}; use one of {', '.join(choices)}")
        return value

    def string(self, key: str, default):
        value = self.data.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, value, "give a string")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, value, "give true or false")
        return value


def check_number(value, key: str, table: _Table, *, low=None, high=None, low_open=False,
                 integer=False, unit: str = ""):
    """Return ``value`` as float (or int) if it lies in range, else raise ValueError."""
    unit_text = f" {unit}" if unit else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise table.fail(key, value, f"give a {'whole ' if integer else ''}number{unit_text}")
    if integer and (isinstance(value, float) and not value.is_integer()):
        raise table.fail(key, value, "give a whole number")
    if not math.isfinite(value):
        raise table.fail(key, value, "give a finite number")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        upper = f" and <= {high:g}" if high is not None else ""
        raise table.fail(key, value, f"the valid range is {bound}{upper}{unit_text}")
    if high is not None and value > high:
        raise table.fail(key, value, f"the valid range is <= {high:g}{unit_text}")
    return int(value) if integer else float(value)


def _sizes(table: _Table) -> tuple:
    if "sizes" not in table.data:
        raise ValueError(f"{table.where}: [array] sizes is missing: give (rows, cols) pairs, "
                         "for example sizes = [[16, 16], [32, 32]]")
    value = table.data["sizes"]
    items = value if isinstance(value, list) else [value]
    if not items:
        raise table.fail("sizes", value, "give at least one size")
    sizes = []
    for item in items:
        pair = [item, item] if isinstance(item, int) and not isinstance(item, bool) else item
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 4096 for n in pair)):
            raise table.fail("sizes", item, "each size is [rows, cols] (or N for N x N) with whole "
                             "numbers in 1..4096")
        sizes.append((pair[0], pair[1]))
    return tuple(dict.fromkeys(sizes))


def _device(table: _Table, base: Path) -> DeviceConfig:
    table.check_unknown(("name", "params", "v_ref", "subckt"))
    name = table.string("name", None)
    if not name:
        raise ValueError(f"{table.where}: [device] name is missing: give a built-in device "
                         f"({', '.join(sorted(LAWS))}) or the path of a .subckt file")
    if name not in LAWS:
        path = (base / name).expanduser()
        if not path.exists():
            raise ValueError(f"{table.where}: [device] name = {name!r} is neither a built-in device "
                             f"({', '.join(sorted(LAWS))}){did_you_mean(name, LAWS)} nor an existing "
                             f".subckt file (looked for {path})")
        name = str(path.resolve())
    params = table.data.get("params", {})
    if not isinstance(params, dict):
        raise table.fail("params", params, "give a table of numbers, such as params = { v0 = 0.15 }")
    ptable = _Table(params, "device.params", table.where)
    checked = {key: check_number(value, key, ptable) for key, value in params.items()}
    v_ref = table.number("v_ref", V_REF_DEFAULT, low=0.0, low_open=True, unit="V")
    device = DeviceConfig(name=name, params=checked, v_ref=v_ref, subckt=table.string("subckt", None))
    # Build the model once so that a bad parameter fails here, naming the file.
    from spicecross.sweep.jobs import build_device

    try:
        build_device(device)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{table.where}: [device] is invalid: {exc}") from None
    return device


def _options(value, where: str) -> dict:
    table = _Table(value, "ngspice.options", where)
    table.check_unknown(tuple(NGSPICE_OPTIONS))
    options = {}
    for key, raw in table.data.items():
        low, high, integer = NGSPICE_OPTIONS[key]
        options[key] = check_number(raw, key, table, low=low, high=high, integer=integer,
                                    low_open=not integer and low == 0.0)
    return options


def parse_config(data: dict, *, source: Path | None = None) -> SweepConfig:
    """Check a parsed TOML document and return its :class:`SweepConfig`.

    Args:
        data: the document, as :func:`tomllib.load` returns it.
        source: the file it came from; relative device and input paths are resolved
            against its folder.

    Raises:
        ValueError: on an unknown table or key, a missing key, or an out-of-range value.
    """
    where = str(source) if source else "sweep config"
    base = source.parent if source else Path.cwd()
    top = _Table(data, "", where)
    top.check_unknown(("sweep", "device", "array", "states", "inputs", "ngspice", "executor"))
    if "device" not in data:
        raise ValueError(f"{where}: table [device] is missing: give at least [device] name = \"sinh\"")
    if "array" not in data:
        raise ValueError(f"{where}: table [array] is missing: give at least [array] sizes = [[16, 16]]")

    sweep = _Table(data.get("sweep", {}), "sweep", where)
    sweep.check_unknown(("name", "seed", "output", "cache", "save_voltages"))
    name = sweep.string("name", source.stem if source else "sweep")
    seed = sweep.number("seed", 0, low=0, integer=True)
    output = sweep.string("output", None)
    cache_value = sweep.data.get("cache", None)
    if cache_value is False:
        cache = None
    elif cache_value is None:
        cache = default_cache_dir()
    elif isinstance(cache_value, str) and cache_value:
        cache = Path(cache_value).expanduser()
    else:
        raise sweep.fail("cache", cache_value, "give a folder path, or false to disable the cache")

    device = _device(_Table(data["device"], "device", where), base)

    array = _Table(data["array"], "array", where)
    array.check_unknown(("sizes", "drive", "r_word", "r_bit", "r_source", "r_sense"))
    sizes = _sizes(array)
    drive = array.choice("drive", "west", DRIVES)
    resistances = {key: array.number_list(key, 0.0, low=0.0, unit="ohm")
                   for key in ("r_word", "r_bit", "r_source", "r_sense")}

    states = _Table(data.get("states", {}), "states", where)
    states.check_unknown(("kinds", "count", "g_min", "g_max"))
    kinds_value = states.data.get("kinds", ["random"])
    kinds = kinds_value if isinstance(kinds_value, list) else [kinds_value]
    if not kinds:
        raise states.fail("kinds", kinds_value, f"give at least one of {', '.join(STATE_KINDS)}")
    for kind in kinds:
        if kind not in STATE_KINDS:
            raise ValueError(f"{where}: [states] kinds contains {kind!r}"
                             f"{did_you_mean(str(kind), STATE_KINDS)}; use {', '.join(STATE_KINDS)}")
    count = states.number("count", 1, low=1, high=100000, integer=True)
    g_min = states.number("g_min", 1e-5, low=0.0, low_open=True, unit="S")
    g_max = states.number("g_max", 1e-4, low=0.0, low_open=True, unit="S")
    if g_max < g_min:
        raise ValueError(f"{where}: [states] g_max = {g_max!r} S is below g_min = {g_min!r} S: "
                         "g_max must be >= g_min")

    inputs = _Table(data.get("inputs", {}), "inputs", where)
    inputs.check_unknown(("source", "v_max", "vectors_per_job", "batches", "file"))
    input_source = inputs.choice("source", "file" if "file" in inputs.data else "random", INPUT_SOURCES)
    v_max = inputs.number("v_max", 0.5, low=0.0, low_open=True, high=100.0, unit="V")
    vectors_per_job = inputs.number("vectors_per_job", 50, low=1, high=100000, integer=True)
    batches = inputs.number("batches", 1, low=1, high=100000, integer=True)
    input_file = None
    if input_source == "file":
        file_value = inputs.string("file", None)
        if not file_value:
            raise ValueError(f"{where}: [inputs] source = 'file' needs [inputs] file = \"PATH.npy\" "
                             "(an (n, rows) array of voltages in V, .npy or .csv)")
        input_file = (base / file_value).expanduser()
        if not input_file.exists():
            raise inputs.fail("file", file_value, f"{input_file} not found")
        if input_file.suffix not in (".npy", ".csv"):
            raise inputs.fail("file", file_value, "use a .npy or .csv file")
    elif "file" in inputs.data:
        raise ValueError(f"{where}: [inputs] file is set but source = 'random': remove file, "
                         "or set source = \"file\"")

    ngspice = _Table(data.get("ngspice", {}), "ngspice", where)
    ngspice.check_unknown(("mode", "timeout", "retries", "options"))
    mode = ngspice.choice("mode", "batch", MODES)
    timeout = ngspice.number("timeout", 600.0, low=0.0, low_open=True, high=7 * 86400.0, unit="s")
    retries = ngspice.number("retries", 3, low=0, high=100, integer=True)
    options = _options(ngspice.data.get("options", {}), where)

    executor = _Table(data.get("executor", {}), "executor", where)
    executor.check_unknown(("workers", "scheduler", "connect_timeout"))
    workers = executor.number("workers", 2, low=1, high=4096, integer=True)
    scheduler = executor.string("scheduler", None)
    if scheduler is not None:
        from spicecross.sweep.executor import check_scheduler_address

        try:
            check_scheduler_address(scheduler)
        except ValueError as exc:
            raise ValueError(f"{where}: [executor] {exc}") from None
    connect_timeout = executor.number("connect_timeout", 10.0, low=0.0, low_open=True, high=3600.0,
                                      unit="s")

    return SweepConfig(
        device=device, sizes=sizes, name=name, seed=seed, drive=drive,
        r_word=resistances["r_word"], r_bit=resistances["r_bit"], r_source=resistances["r_source"],
        r_sense=resistances["r_sense"], state_kinds=tuple(dict.fromkeys(kinds)), states_per_point=count,
        g_min=g_min, g_max=g_max, input_source=input_source, v_max=v_max,
        vectors_per_job=vectors_per_job, batches=batches, input_file=input_file, mode=mode,
        options=options, timeout=timeout, retries=retries, workers=workers, scheduler=scheduler,
        connect_timeout=connect_timeout, output=Path(output).expanduser() if output else None,
        cache=cache, save_voltages=sweep.boolean("save_voltages", False), source=source)


def load_config(path: str | Path) -> SweepConfig:
    """Read and check a sweep config file (TOML).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: on a TOML syntax error or an invalid key or value.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sweep config {path} not found")
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, source=path.resolve())
