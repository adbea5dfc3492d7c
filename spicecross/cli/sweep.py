"""The ``spicecross sweep`` subcommand: run a TOML-described sweep with a progress bar and a summary.

``spicecross.cli.main`` registers it with :func:`add_sweep_parser`; ``python -m
spicecross.cli.sweep CONFIG.toml`` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

EXIT_OK, EXIT_FAILED_JOBS, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

_DESCRIPTION = """\
Run every job of a sweep described in CONFIG.toml (device, array sizes, wire,
source and sense resistances, conductance states, input vectors, ngspice
options; the format is documented in spicecross/sweep/config.py and in
calibration/sweep-example.toml). Each finished job is written to the output
folder at once, so running the same command again after an interruption
skips the stored jobs and runs only the rest (jobs that failed are tried
again). Identical netlists are served from the result cache folder
([sweep] cache), which sweeps share.

Exit status: 0 when every job is stored, 1 when at least one job failed every
attempt (its netlist and ngspice output are saved under OUTPUT/failed/), 2 on
an invalid config or an unreachable scheduler, 130 when interrupted.
"""


class TqdmProgress:
    """A tqdm progress bar on stderr, one step per job."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None
        self.failed = 0

    def start(self, total: int, skipped: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=skipped, unit="job", file=sys.stderr, disable=not self.enabled,
                        dynamic_ncols=True, desc="sweep")

    def update(self, status: str, job) -> None:
        if status == "failed":
            self.failed += 1
            self.bar.set_postfix(failed=self.failed)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the sweep that ``args`` describe; return the exit status."""
    from spicecross.sweep import load_config, run_sweep

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers} is invalid: give a whole number >= 1")
    config = load_config(args.config)
    progress = TqdmProgress(enabled=not args.no_progress)
    try:
        summary = run_sweep(config, output=args.output, workers=args.workers, scheduler=args.scheduler,
                            progress=progress)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print(summary.format_text())
    return EXIT_OK if summary.ok else EXIT_FAILED_JOBS


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.toml", help="sweep description (TOML)")
    parser.add_argument("--workers", "-j", type=int, default=None, metavar="N",
                        help="local ngspice worker processes (default: [executor] workers, else 2)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                        help="run on this existing Dask scheduler instead of local workers "
                             "(ngspice runs in batch mode there)")
    parser.add_argument("--output", "-o", metavar="DIR", default=None,
                        help="store folder (default: [sweep] output, else sweeps/NAME)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar on stderr")
    parser.set_defaults(func=cmd_sweep)


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``sweep`` subcommand on ``subparsers`` (from ``add_subparsers``) and return it."""
    parser = subparsers.add_parser(
        "sweep", help="run a parameter sweep of crossbars in ngspice (TOML config)",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``sweep`` as a command of its own; return its exit status."""
    from spicecross.errors import SpicecrossError

    parser = argparse.ArgumentParser(prog="python -m spicecross.cli.sweep", description=_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="log starts, stops and retries")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (SpicecrossError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"spicecross: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("spicecross: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
