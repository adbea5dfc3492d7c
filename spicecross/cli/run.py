"""``spicecross run``: the main job (train, check in ngspice while training, validate in ngspice)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid: give a whole number >= 1")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed {value} is invalid: give a whole number >= 0")
    return value


def add_run_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``spicecross run`` on ``subparsers``; return its parser."""
    run = subparsers.add_parser(
        "run",
        help="train standard and aware networks at several power levels and validate them in ngspice",
        description="Train standard and nonideality-aware crossbar networks at three or more power levels, "
        "check them in ngspice while they train, validate each on the test split in ngspice, "
        "and write a report folder. A rerun with the same settings resumes from the last "
        "finished stage.",
    )
    run.add_argument(
        "--quick",
        action="store_true",
        help="fewer epochs, two power levels and subsets (calibration/run-quick.toml); for smoke tests",
    )
    run.add_argument(
        "--config",
        metavar="FILE.toml",
        help="run configuration (default calibration/run.toml, or run-quick.toml with --quick)",
    )
    run.add_argument(
        "--output", "-o", metavar="DIR", help="report folder (default runs/main, or runs/quick with --quick)"
    )
    run.add_argument(
        "--workers", type=_positive_int, default=2, help="local ngspice worker processes (default 2)"
    )
    run.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="address of a Dask scheduler (tcp://HOST:PORT) that runs the ngspice jobs",
    )
    run.add_argument(
        "--dataset",
        choices=("digits", "fashion-mnist", "mnist"),
        help="data set (default from the configuration: digits)",
    )
    run.add_argument(
        "--data-dir", metavar="DIR", help="folder of the IDX files (mnist; optional for fashion-mnist)"
    )
    run.add_argument(
        "--seeds",
        type=_seed,
        nargs="+",
        metavar="SEED",
        help="seeds; one network of each kind per seed and level (default from the configuration)",
    )
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    run.add_argument("--json", action="store_true", help="print the summary (table and goals) as JSON")
    run.set_defaults(func=cmd_run)
    return run


def cmd_run(args: argparse.Namespace) -> int:
    """Run the main job and print its table (or JSON summary)."""
    from spicecross.training.job import default_config_path, load_run_config, run_job
    from spicecross.validation.report import format_table

    path = Path(args.config) if args.config else default_config_path(args.quick)
    config = load_run_config(path, dataset=args.dataset, data_dir_override=args.data_dir, seeds=args.seeds)
    if args.dataset and args.dataset != "digits" and config.network.sizes[0] == 64:
        # 28x28 images: keep the hidden layers, change the input size.
        import dataclasses

        from spicecross.nn.network import NetworkConfig

        sizes = (784,) + tuple(config.network.sizes[1:])
        config = dataclasses.replace(config, network=NetworkConfig(sizes, config.network.activation))
    output = Path(args.output) if args.output else Path("runs") / ("quick" if args.quick else "main")
    report = run_job(
        config,
        output,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.no_progress and sys.stderr.isatty() or False,
    )
    calibration = report["calibration"]["provenance"].get("source", "")
    if args.json:
        print(
            json.dumps(
                {
                    "output": str(output),
                    "calibration": calibration,
                    **report["summary"],
                    "ngspice_version": report["ngspice_version"],
                }
            )
        )
        return 0
    if "short ngspice sweep" in calibration:
        print(
            "note: no shipped calibration was found, so the device law was fitted from a short ngspice sweep"
        )
    print(
        f"spicecross run ({config.name}, {config.dataset}, seeds {list(config.seeds)}), "
        f"{report['ngspice_version']}, calibration: {calibration}"
    )
    print(format_table(report))
    print(f"report written to {output}/")
    return 0
