"""The calibration run: device sweeps and law fit, tile sweeps, surrogate fits, scores and the report.

:func:`run_calibration` is what ``spicecross calibrate CONFIG`` runs. It writes
into the output folder:

* ``sweeps/``: one ``.npz`` per finished ngspice tile job (a rerun resumes from them);
* ``surrogates/NAME.json`` + ``NAME.npz``: each fitted surrogate with the provenance
  of the sweeps it was fitted on (load with ``spicecross.surrogates.io.load_surrogate``);
* ``law.json``: the fitted device law (and ``state_map.json`` for a user's model with a state parameter);
* ``report.json``, ``device_sweep.npz``, ``predictions.npz`` and the PNG plots of
  :mod:`spicecross.calibration.report`.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import spicecross
from spicecross.calibration.config import CalibrationConfig
from spicecross.calibration.device import DeviceSweep, LawFit, fit_device_law, sweep_device
from spicecross.calibration.execution import NetlistExecutor
from spicecross.calibration.fit import fit_family, wiring_of
from spicecross.calibration.score import check_goal, predict, run_grid, score_family
from spicecross.calibration.state import StateMap, build_state_map, load_state_device
from spicecross.calibration.tiles import TileConditions, solve_tiles
from spicecross.devices import builtin_device, load_subckt_device
from spicecross.devices.laws import nonlinearity_of_conductance

logger = logging.getLogger(__name__)

REPORT_FORMAT = "spicecross-calibration-report/1"
LAW_FORMAT = "spicecross-law/1"


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    # disable=None lets tqdm hide the bar when stderr is not a terminal.
    return tqdm(
        total=total, desc=desc, disable=None if enabled else True, leave=False, unit="job", file=sys.stderr
    )


def device_programmer(config: CalibrationConfig, executor: NetlistExecutor):
    """Return ``(device_for, base device, state map or None)`` for the configured device.

    ``device_for(g)`` returns the device model programmed to the conductances ``g`` (S),
    ready for a CrossbarSpec of that shape.
    """
    d = config.device
    if d.name in spicecross.devices.LAWS:
        base = builtin_device(d.name, v_ref=d.v_ref, **d.params)
        if d.n_of_g:
            coeffs, g_ref = list(d.n_of_g["coeffs"]), float(d.n_of_g.get("g_ref", 5e-4))
            return (
                (
                    lambda g: base.with_params(
                        n=nonlinearity_of_conductance(np.asarray(g, float), coeffs, g_ref)
                    )
                ),
                base,
                None,
            )
        return (lambda g: base), base, None
    if d.state_param:
        base = load_state_device(Path(d.name), subckt=d.subckt, v_ref=d.v_ref, **d.params)
        smap = build_state_map(
            base,
            d.state_param,
            d.state_range,
            executor,
            scale=d.state_scale,
            state_node=d.state_node,
            state_ref=d.state_ref,
        )
        return smap.device_for, smap.device, smap
    base = load_subckt_device(Path(d.name), subckt=d.subckt, v_ref=d.v_ref, **d.params)
    if base.conductance_param is None:
        raise ValueError(
            f"device {base.name!r} declares no g or r parameter: set state_param (and state_range) under "
            "[device] to the parameter that sets its state"
        )
    return (lambda g: base), base, None


def calibrate_device(
    config: CalibrationConfig, executor: NetlistExecutor
) -> tuple[DeviceSweep, LawFit, StateMap | None, object]:
    """Sweep the configured device and fit its law; return (sweep, fit, state map, device_for)."""
    device_for, base, smap = device_programmer(config, executor)
    s = config.device_sweep
    targets = np.geomspace(s.g_min, s.g_max, s.states)
    device = device_for(targets.reshape(1, -1))
    states = None
    if smap is None:
        params = device.instance_params(targets.reshape(1, -1))
        states = [{k: float(v[0, i]) for k, v in params.items()} for i in range(targets.size)]
    sweep = sweep_device(
        device, targets, executor, states=states, v_min=s.v_min, v_max=s.v_max, step=s.step, state_map=smap
    )
    fit = fit_device_law(
        sweep,
        s.laws,
        max_residual=s.max_residual,
        temperature=s.temperature,
        n_degree=s.n_degree,
        n_g_ref=s.n_g_ref,
    )
    return sweep, fit, smap, device_for


def run_calibration(
    config: CalibrationConfig,
    *,
    output: str | Path | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
) -> dict:
    """Run the whole calibration of ``config`` and write its report folder; return the report dict.

    Args:
        config: the checked configuration.
        output: report folder; overrides ``[calibration] output``.
        workers: local ngspice worker processes.
        scheduler: Dask scheduler address; the ngspice runs go there instead.
        progress: show tqdm progress bars on stderr.
    """
    from spicecross.calibration.report import write_report
    from spicecross.surrogates.io import save_surrogate

    start = time.perf_counter()
    out = Path(output or config.output or Path("runs/calibration") / config.name)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    with (
        NetlistExecutor(workers, scheduler=scheduler, timeout=config.timeout) as executor,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        t = time.perf_counter()
        sweep, law_fit, smap, device_for = calibrate_device(config, executor)
        timings["device_s"] = time.perf_counter() - t
        law = law_fit.law

        tc = config.tiles
        conditions = TileConditions(
            tc.rows, tc.cols, tc.r_word, tc.r_bit, tc.r_source, tc.r_sense, tc.g_min, tc.g_max, tc.v_max
        )
        t = time.perf_counter()
        with _progress(len(tc.train) + len(tc.heldout), "tile sweeps (ngspice)", progress) as bar:
            train = solve_tiles(
                conditions,
                tc.train,
                device_for,
                vectors=tc.vectors,
                input_kind=tc.inputs,
                seed=config.seed,
                executor=executor,
                folder=out / "sweeps",
                progress=bar.update,
            )
            heldout = solve_tiles(
                conditions,
                tc.heldout,
                device_for,
                vectors=tc.heldout_vectors,
                input_kind=tc.inputs,
                seed=config.seed + 1,
                executor=executor,
                folder=out / "sweeps",
                progress=bar.update,
            )
        timings["tile_sweeps_s"] = time.perf_counter() - t
    for w in caught:
        # Re-issue what the device and tile stages warned about, now that it is recorded for the report.
        warnings.warn(w.message, w.category, stacklevel=2)

    sc = config.surrogates
    t = time.perf_counter()
    wiring = wiring_of(train)
    models, fit_details = fit_family(
        law,
        wiring,
        train,
        names=sc.names,
        sweep_counts=sc.sweep_counts,
        sweeps_target=sc.sweeps_target,
        learned_hidden=sc.learned_hidden,
        learned_steps=sc.learned_steps,
        seed=config.seed,
    )
    timings["fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    scores = score_family(
        models, heldout, cost_batch=sc.cost_batch, cost_repeats=sc.cost_repeats, time_exact=sc.time_exact
    )
    for name, detail in fit_details.items():
        if "skipped" in detail:
            scores[name] = {"skipped": detail["skipped"]}
    goal = check_goal(scores, nrmse_goal=config.nrmse_goal, max_cost=config.max_cost)
    timings["score_s"] = time.perf_counter() - t
    predictions = {name: predict(model, heldout) for name, model in models.items()}

    grid = None
    if config.grid is not None:
        grid = _run_grid(config, law, fit_details, progress)
        timings["grid_s"] = grid.pop("elapsed_s")

    provenance = {
        "calibration": config.name,
        # The file name only: a full path would differ from machine to machine.
        "config_source": Path(config.source).name if config.source else None,
        "device": sweep.device,
        "law": law.to_dict(),
        "law_residual": law_fit.residual,
        "train_sweeps": train.provenance(),
        "heldout_sweeps": heldout.provenance(),
        "spicecross_version": spicecross.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    saved = {}
    (out / "surrogates").mkdir(exist_ok=True)
    for name, model in models.items():
        path = save_surrogate(
            model,
            out / "surrogates" / name,
            {
                **provenance,
                "surrogate": name,
                "fit": fit_details.get(name, {}),
                "heldout_scores": {k: v for k, v in scores[name].items() if k != "cost"},
            },
        )
        saved[name] = str(path.relative_to(out))
    save_law(law, out / "law.json", {**provenance, "fit": law_fit.to_dict()})
    if smap is not None:
        (out / "state_map.json").write_text(json.dumps(smap.to_dict(), indent=1))

    report = {
        "format": REPORT_FORMAT,
        "name": config.name,
        "config": config.to_dict(),
        "ngspice_version": train.ngspice_version or sweep.ngspice_version,
        "spicecross_version": spicecross.__version__,
        "python": platform.python_version(),
        "executor": executor.description,
        "device": {
            "sweep": sweep.to_dict(),
            "fit": law_fit.to_dict(),
            "state_map": smap.to_dict() if smap is not None else None,
            "state_hold": smap.hold if smap is not None else None,
        },
        "tiles": {"train": train.provenance(), "heldout": heldout.provenance()},
        "fits": fit_details,
        "scores": scores,
        "goal": goal,
        "grid": grid,
        "surrogate_files": saved,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
        "timings_s": {**timings, "total_s": time.perf_counter() - start},
    }
    write_report(out, report, sweep, law_fit, heldout, predictions)
    logger.info(
        "calibration %s finished in %.1f s; report in %s", config.name, report["timings_s"]["total_s"], out
    )
    return report


def _run_grid(config: CalibrationConfig, law, fit_details: dict, progress: bool) -> dict:
    gc = config.grid
    if law.name == "table":
        return {
            "skipped": "the exact solver of the grid needs a built-in law; this device is "
            "described by a table",
            "elapsed_s": 0.0,
        }
    sweeps = fit_details.get("ir_drop", {}).get("sweeps", 1)
    sc = config.surrogates

    def fit(cell_law, wiring, train):
        models, _ = fit_family(
            cell_law,
            wiring,
            train,
            names=gc.names,
            sweep_counts=[sweeps],
            sweeps_target=sc.sweeps_target,
            learned_hidden=sc.learned_hidden,
            learned_steps=sc.learned_steps,
            seed=config.seed,
        )
        return models

    t = time.perf_counter()
    with _progress(len(gc.r_wire) * len(gc.g_ranges), "grid (exact solver)", progress) as bar:
        grid = run_grid(
            law,
            rows=gc.rows,
            cols=gc.cols,
            r_wires=gc.r_wire,
            g_ranges=gc.g_ranges,
            fit=fit,
            tiles=gc.tiles,
            vectors=gc.vectors,
            v_max=config.tiles.v_max,
            seed=config.seed + 2,
            nrmse_goal=config.nrmse_goal,
            progress=bar.update,
        )
    grid["ir_drop_sweeps"] = sweeps
    grid["elapsed_s"] = time.perf_counter() - t
    return grid


def save_law(law, path: str | Path, provenance: dict | None = None) -> Path:
    """Write a fitted law as JSON (``spicecross-law/1``) with its provenance."""
    from spicecross.netlist.writer import write_text_atomic

    path = Path(path)
    write_text_atomic(
        path,
        json.dumps({"format": LAW_FORMAT, "law": law.to_dict(), "provenance": provenance or {}}, indent=1),
    )
    return path


def load_law(path: str | Path):
    """Read a law written by :func:`save_law`; return ``(FittedLaw, provenance)``."""
    from spicecross.surrogates.law import FittedLaw

    path = Path(path)
    data = json.loads(path.read_text())
    if data.get("format") != LAW_FORMAT:
        raise ValueError(
            f"{path} is not a spicecross law file (format {data.get('format')!r}, expected {LAW_FORMAT!r})"
        )
    return FittedLaw.from_dict(data["law"]), data.get("provenance", {})


def summary_of(report: dict) -> dict:
    """Return the short summary that ``--json`` prints: each surrogate's NRMSE, power error and cost."""
    surrogates = {}
    for name, s in report["scores"].items():
        if "skipped" in s:
            surrogates[name] = {"skipped": s["skipped"]}
            continue
        cost = s.get("cost", {})
        surrogates[name] = {
            "nrmse": s["nrmse"],
            "power_error": s["power_error"],
            "forward_ms": cost.get("forward_ms"),
            "backward_ms": cost.get("backward_ms"),
            "cost_relative_to_device_only": cost.get("relative_to_device_only"),
        }
    return {
        "name": report["name"],
        "ngspice_version": report["ngspice_version"],
        "device_law": report["device"]["fit"]["chosen"],
        "law_residual": report["device"]["fit"]["residual"],
        "surrogates": surrogates,
        "goal": report["goal"],
        "timings_s": report["timings_s"],
    }
