"""The spicecross command: crossbar netlists, ngspice runs, calibration, training and validation.

Subcommands:
    netlist generate   write a crossbar netlist and its sidecar JSON
    netlist inspect    summarise and lint any ngspice netlist
    solve              solve a generated netlist with ngspice or the exact engine
    sweep              run an ngspice sweep described in a TOML file
    calibrate          fit device laws and crossbar surrogates to ngspice sweeps, and score them
    run                the main job: train, check in ngspice while training, validate in ngspice
    validate           solve a trained network in ngspice on the test split
    example            a small crossbar solved in ngspice and by the exact solver
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np

import spicecross
from spicecross.csvmatrix import load_csv_matrix
from spicecross.errors import SpicecrossError

logger = logging.getLogger("spicecross")
#: Nonlinearity of the command line's default device, a mildly nonlinear power law.
DEFAULT_POWER_LAW_N = 2.5
LAW_NAMES = ("linear", "power_law", "sinh", "poole_frenkel")


# ------------------------------------------------------------- arguments ----

def _parse_param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param {text!r} is invalid: write KEY=VALUE, for example n=2.5")
    try:
        return key.strip(), float(value)
    except ValueError:
        path = Path(value)
        if path.suffix in (".npy", ".csv") and path.exists():
            try:
                return key.strip(), load_matrix(path)
            except (ValueError, OSError) as exc:
                # argparse would replace a ValueError's message with "invalid _parse_param value".
                raise argparse.ArgumentTypeError(str(exc)) from None
        raise argparse.ArgumentTypeError(
            f"--param {text!r}: {value!r} is not a number or an existing .npy/.csv file") from None


def load_matrix(path: str | Path) -> np.ndarray:
    """Load a 1-D or 2-D array from ``.npy`` or ``.csv`` (comma-separated, no header)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".csv":
        return load_csv_matrix(path)
    raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .npy or .csv")


def _add_crossbar_args(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("conductances and inputs")
    src.add_argument("--conductances", "-g", metavar="G.npy",
                     help="conductance matrix (rows, cols) in S, .npy or .csv")
    src.add_argument("--weights", metavar="W.npy",
                     help="weight matrix (inputs, outputs) mapped to differential pairs in "
                          "[--g-off, --g-on]; the crossbar gets 2·outputs bit lines")
    src.add_argument("--g-off", type=float, default=1e-4, help="G_off for --weights, S (default 1e-4)")
    src.add_argument("--g-on", type=float, default=5e-4, help="G_on for --weights, S (default 5e-4)")
    src.add_argument("--rows", type=int, default=8, help="rows of a random crossbar (default 8)")
    src.add_argument("--cols", type=int, default=8, help="columns of a random crossbar (default 8)")
    src.add_argument("--seed", type=int, default=0, help="seed of random conductances and inputs")
    src.add_argument("--voltages", "-v", metavar="V.npy",
                     help="input voltages (batch, rows) in V, .npy or .csv; random in "
                          "[0, 2·v_ref] when omitted")
    src.add_argument("--vectors", type=int, default=4, help="number of random input vectors (default 4)")
    dev = p.add_argument_group("device")
    dev.add_argument("--device", "-d", default="power_law",
                     help="built-in device (linear, power_law, sinh, poole_frenkel) or the path of a "
                          f"two-pin .subckt file (default power_law, with n={DEFAULT_POWER_LAW_N} unless "
                          "--param n=... is given)")
    dev.add_argument("--allow-unsafe", action="store_true",
                     help="accept a device file with .control blocks, shell commands or outside includes")
    dev.add_argument("--subckt", help="which .subckt to use when the device file defines several")
    dev.add_argument("--param", "-p", action="append", type=_parse_param, default=[], metavar="KEY=VALUE",
                     help="device parameter, a number or a .npy/.csv of shape (rows, cols); repeatable")
    dev.add_argument("--v-ref", type=float, default=0.25, help="read voltage defining G, V (default 0.25)")
    wire = p.add_argument_group("wiring")
    wire.add_argument("--r-word", type=float, default=1.0,
                      help="word-line segment resistance, ohm (default 1)")
    wire.add_argument("--r-bit", type=float, default=1.0, help="bit-line segment resistance, ohm (default 1)")
    wire.add_argument("--r-source", type=float, default=0.0, help="driver resistance, ohm (default 0)")
    wire.add_argument("--r-sense", type=float, default=0.0, help="sense resistance, ohm (default 0)")
    wire.add_argument("--drive", choices=("west", "both"), default="west",
                      help="drive word lines at column 0 (west) or at both ends")
    wire.add_argument("--tile-rows", type=int, default=128,
                      help="largest tile, rows; a larger array is split into tiles (default 128)")
    wire.add_argument("--tile-cols", type=int, default=128,
                      help="largest tile, columns, rounded down to even (default 128)")


def build_crossbar(args: argparse.Namespace):
    """Return (spec, voltages) from the crossbar arguments of ``netlist generate``."""
    from spicecross.crossbar.mapping import map_differential
    from spicecross.crossbar.spec import CrossbarSpec
    from spicecross.devices import get_device

    rng = np.random.default_rng(args.seed)
    if args.conductances and args.weights:
        raise ValueError("give either --conductances or --weights, not both")
    if args.conductances:
        g = load_matrix(args.conductances)
    elif args.weights:
        g = map_differential(load_matrix(args.weights), args.g_off, args.g_on).conductances
    else:
        if args.rows < 1 or args.cols < 1:
            raise ValueError(f"--rows {args.rows} --cols {args.cols} is invalid: both must be >= 1")
        g = rng.uniform(args.g_off, args.g_on, size=(args.rows, args.cols))
    params = dict(args.param)
    if args.device == "power_law":
        params.setdefault("n", DEFAULT_POWER_LAW_N)
    kwargs = {"v_ref": args.v_ref, **params}
    if args.subckt:
        kwargs["subckt"] = args.subckt
    if args.allow_unsafe and args.device not in LAW_NAMES:
        kwargs["allow_unsafe"] = True
    device = get_device(args.device, **kwargs)
    spec = CrossbarSpec(g, device=device, r_word=args.r_word, r_bit=args.r_bit, r_source=args.r_source,
                        r_sense=args.r_sense, drive=args.drive)
    if args.voltages:
        voltages = load_matrix(args.voltages)
    else:
        if args.vectors < 1:
            raise ValueError(f"--vectors {args.vectors} is invalid: give at least 1")
        voltages = rng.uniform(0.0, 2 * args.v_ref, size=(args.vectors, spec.rows))
    return spec, voltages


# -------------------------------------------------------------- commands ----

def cmd_generate(args: argparse.Namespace) -> int:
    from spicecross.netlist.writer import format_crossbar_netlist, write_crossbar_netlist, write_text_atomic

    spec, voltages = build_crossbar(args)
    if spec.rows <= args.tile_rows and spec.cols <= args.tile_cols:
        netlist = format_crossbar_netlist(spec, voltages)
        cir, side = write_crossbar_netlist(args.output, netlist)
        summary = {"netlist": str(cir), "sidecar": str(side), "rows": spec.rows, "cols": spec.cols,
                   "device": spec.device.name, "n_vectors": netlist.batch, "tiles": 1}
        vectors = "input vector" if netlist.batch == 1 else "input vectors"
        print(json.dumps(summary) if args.json else f"wrote {cir} ({spec.rows}x{spec.cols} "
              f"{spec.device.name}, {netlist.batch} {vectors}) and {side}")
        return 0

    # Larger than one tile: one netlist per tile, and an index of where each tile sits.
    from spicecross.crossbar.tiling import split_spec

    output = Path(args.output)
    index = {"format": "spicecross-tiles/1", "rows": spec.rows, "cols": spec.cols, "tiles": []}
    for tile, tile_spec in split_spec(spec, args.tile_rows, args.tile_cols):
        name = output.with_name(f"{output.stem}.tile_r{tile.row_start}_c{tile.col_start}{output.suffix}")
        netlist = format_crossbar_netlist(tile_spec, np.asarray(voltages)[:, tile.row_start:tile.row_stop])
        write_crossbar_netlist(name, netlist)
        index["tiles"].append({"netlist": name.name, "rows": [tile.row_start, tile.row_stop],
                               "cols": [tile.col_start, tile.col_stop]})
    index_path = output.with_suffix(".tiles.json")
    write_text_atomic(index_path, json.dumps(index, indent=1))
    summary = {"index": str(index_path), "rows": spec.rows, "cols": spec.cols, "tiles": len(index["tiles"]),
               "device": spec.device.name}
    print(json.dumps(summary) if args.json else f"wrote {len(index['tiles'])} tile netlists "
          f"({args.tile_rows}x{args.tile_cols} at most) and their index {index_path}; the bit-line "
          "currents of tiles that share columns add up")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from spicecross.netlist.inspect import inspect_netlist
    from spicecross.resources import device_models_dir

    path = Path(args.file)
    if not path.exists():
        raise FileNotFoundError(f"netlist {path} not found")
    if path.name.endswith(".tiles.json"):
        raise ValueError(f"{path} is a tile index written by 'netlist generate', not a netlist: "
                         "inspect each tile's .cir file that it lists")
    report = inspect_netlist(path, allowed_dirs=(device_models_dir(),))
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.format_text())
    errors = [f for f in report.to_dict().get("findings", []) if f.get("severity") == "error"]
    return 1 if errors and args.strict else 0


def cmd_solve(args: argparse.Namespace) -> int:
    from spicecross.sim.runner import NgspiceRunner
    from spicecross.sim.solve import solve_file, solve_tiles

    runner = NgspiceRunner(1, mode=args.mode, timeout=args.timeout) if args.engine == "ngspice" else None
    solver = solve_tiles if str(args.file).endswith(".tiles.json") else solve_file
    try:
        result = solver(args.file, engine=args.engine, runner=runner, allow_unsafe=args.allow_unsafe)
    finally:
        if runner is not None:
            runner.close()
    if args.json:
        print(json.dumps(result.to_json_dict(voltages=args.voltages)))
        return 0
    print(f"engine {result.engine} ({result.info.get('ngspice_version', 'scipy')}), "
          f"{result.batch} input vectors, {result.elapsed_s:.3f} s")
    for b in range(result.batch):
        currents = " ".join(f"{i:.6e}" for i in result.currents[b])
        print(f"vector {b}: power {result.power[b]:.6e} W; bit-line currents (A): {currents}")
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    from spicecross.cli.example import run_example

    return run_example(args)


# ------------------------------------------------------------------ main ----

def make_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``spicecross`` command."""
    parser = argparse.ArgumentParser(prog="spicecross", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"spicecross {spicecross.__version__}")
    parser.add_argument("--verbose", action="store_true", help="log progress and retries")
    sub = parser.add_subparsers(dest="command", required=True)

    netlist = sub.add_parser("netlist", help="generate or inspect netlists")
    nsub = netlist.add_subparsers(dest="netlist_command", required=True)
    gen = nsub.add_parser("generate", help="write a crossbar netlist and its sidecar JSON")
    _add_crossbar_args(gen)
    gen.add_argument("--output", "-o", required=True, metavar="FILE.cir", help="netlist to write")
    gen.add_argument("--json", action="store_true", help="print a JSON summary")
    gen.set_defaults(func=cmd_generate)
    ins = nsub.add_parser("inspect", help="summarise and lint an ngspice netlist")
    ins.add_argument("file", help="netlist file")
    ins.add_argument("--json", action="store_true", help="print the report as JSON")
    ins.add_argument("--strict", action="store_true", help="exit with status 1 when lint finds errors")
    ins.set_defaults(func=cmd_inspect)

    solve = sub.add_parser("solve", help="solve a generated crossbar netlist")
    solve.add_argument("file", help="netlist written by 'spicecross netlist generate', or the "
                                    "*.tiles.json index it writes for an array larger than one tile")
    solve.add_argument("--engine", choices=("ngspice", "exact"), default="ngspice",
                       help="ngspice, or the exact scipy nodal solver (default ngspice)")
    solve.add_argument("--mode", choices=("shared", "batch"), default="shared",
                       help="ngspice through its shared library (PySpice) or the ngspice program")
    solve.add_argument("--timeout", type=float, default=600.0, help="ngspice time limit, s (default 600)")
    solve.add_argument("--allow-unsafe", action="store_true",
                       help="run netlists with .control blocks, shell commands or outside includes")
    solve.add_argument("--voltages", action="store_true", help="with --json, include node voltages")
    solve.add_argument("--json", action="store_true", help="print results as JSON")
    solve.set_defaults(func=cmd_solve)

    from spicecross.cli.calibrate import add_calibrate_parser
    from spicecross.cli.run import add_run_parser
    from spicecross.cli.sweep import add_sweep_parser
    from spicecross.cli.validate import add_validate_parser

    add_sweep_parser(sub)
    add_calibrate_parser(sub)

    add_run_parser(sub)
    add_validate_parser(sub)

    example = sub.add_parser("example",
                             help="solve a small example crossbar in ngspice and with the exact solver")
    example.add_argument("--output", "-o", default="runs/example",
                         help="report folder (default runs/example)")
    example.add_argument("--json", action="store_true", help="print the summary as JSON")
    example.set_defaults(func=cmd_example)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``spicecross`` command; return its exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader of the output (such as 'head') has closed it: stop without a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # the shell's status for SIGPIPE
    except (SpicecrossError, ValueError, TypeError, OSError) as exc:
        print(f"spicecross: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spicecross: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning as one ``spicecross: warning:`` line, without the source line that raised it."""
    print(f"spicecross: warning: {message}", file=file or sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
