"""The ``spicecross calibrate`` subcommand: sweeps, fits, scores and a report folder."""

from __future__ import annotations

import argparse
import json


def add_calibrate_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``calibrate`` to the ``spicecross`` subcommands and return its parser."""
    parser = subparsers.add_parser(
        "calibrate",
        help="fit device laws and crossbar surrogates to ngspice sweeps, and score them",
        description="Run the calibration described by a TOML file (see docs/calibration.md): "
        "device I-V sweeps "
        "and law fit, crossbar tile sweeps, surrogate fits, held-out scores and an exact-solver grid. "
        "Writes report.json, plots and the fitted surrogates into the output folder.",
    )
    parser.add_argument("config", help="calibration TOML file, for example calibration/quick.toml")
    parser.add_argument(
        "--workers", "-j", type=int, default=1, help="local ngspice worker processes (default 1)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="Dask scheduler address (for example tcp://127.0.0.1:8786); ngspice runs go there",
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        help="report folder (default: [calibration] output, else runs/calibration/NAME)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary as JSON: NRMSE, power error and cost of each surrogate",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=cmd_calibrate)
    return parser


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Run ``spicecross calibrate``; return the exit status."""
    from spicecross.calibration import load_config, run_calibration, summary_of

    if args.workers < 1:
        raise ValueError(f"--workers {args.workers} is invalid: give at least 1")
    config = load_config(args.config)
    report = run_calibration(
        config,
        output=args.output,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )
    summary = summary_of(report)
    if args.json:
        print(json.dumps(summary))
        return 0
    out = args.output or config.output or f"runs/calibration/{config.name}"
    fit = report["device"]["fit"]
    print(
        f"calibration {config.name}: device law {fit['chosen']} (residual {fit['residual']:.2e}), "
        f"{report['ngspice_version']}"
    )
    print(f"{'surrogate':<12} {'NRMSE':>9} {'power err':>9} {'fwd ms':>8} {'bwd ms':>8} {'cost':>6}")
    for name, s in summary["surrogates"].items():
        if "skipped" in s:
            print(f"{name:<12} skipped: {s['skipped']}")
            continue
        if s["forward_ms"] is None:
            print(f"{name:<12} {s['nrmse']:9.3%} {s['power_error']:9.3%}  (not timed)")
            continue
        cost = s["cost_relative_to_device_only"]
        print(
            f"{name:<12} {s['nrmse']:9.3%} {s['power_error']:9.3%} {s['forward_ms'] or 0:8.2f} "
            f"{s['backward_ms'] or 0:8.2f} {cost if cost is not None else float('nan'):6.2f}"
        )
    goal = summary["goal"]
    if goal.get("best_fast"):
        print(
            f"best fast surrogate: {goal['best_fast']} ({goal['best_fast_nrmse']:.3%} NRMSE at "
            f"{goal['best_fast_cost']:.2f}x device-only cost); goal {'met' if goal['met'] else 'not met'}"
        )
    else:
        print(f"no surrogate other than device-only costs at most {goal['max_cost']:g}x device-only")
    print(f"report written to {out}/")
    return 0
