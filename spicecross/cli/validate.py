"""``spicecross validate``: solve a trained network in ngspice on the test split."""

from __future__ import annotations

import argparse
import json

from spicecross.cli.run import _positive_int


def add_validate_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``spicecross validate`` on ``subparsers``; return its parser."""
    p = subparsers.add_parser(
        "validate",
        help="solve a trained network in ngspice on the test split",
        description="Solve a trained network (a .pt file written by 'spicecross run') in ngspice, "
        "layer by layer, "
        "on the test split of the data set it was trained on, and report accuracy, power per "
        "inference and array-only TOPS/W next to the surrogate's prediction, with the per-layer "
        "current NRMSE.",
    )
    p.add_argument("model", metavar="MODEL", help="model file (.pt)")
    p.add_argument(
        "--subset",
        type=_positive_int,
        metavar="N",
        help="solve a stratified random subset of N test examples (default: the whole test split)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the subset (default 0)")
    p.add_argument(
        "--workers", type=_positive_int, default=2, help="local ngspice worker processes (default 2)"
    )
    p.add_argument("--scheduler", metavar="ADDR", help="address of a Dask scheduler (tcp://HOST:PORT)")
    p.add_argument(
        "--data-dir", metavar="DIR", help="folder of the IDX files, if not the one the model recorded"
    )
    p.add_argument(
        "--read-time",
        type=float,
        default=10e-9,
        metavar="S",
        help="read time of one inference for TOPS/W, s (default 10e-9)",
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=cmd_validate)
    return p


def validate_model_file(
    path,
    *,
    subset: int | None = None,
    seed: int = 0,
    workers: int = 2,
    scheduler: str | None = None,
    data_dir: str | None = None,
    read_time_s: float = 10e-9,
) -> dict:
    """Solve the model in ``path`` in ngspice on its test split (or a subset); return the figures."""
    from spicecross.data import load_dataset
    from spicecross.nn.network import load_model
    from spicecross.training.loop import stratified_indices
    from spicecross.validation.circuit import validate_circuit
    from spicecross.validation.executor import ValidationExecutor
    from spicecross.validation.metrics import tops_per_watt

    loaded = load_model(path)
    meta = loaded.metadata
    dataset = load_dataset(
        meta.get("dataset", "digits"),
        data_dir=data_dir or meta.get("data_dir"),
        seed=meta.get("split_seed", 0),
    )
    model = loaded.model
    if dataset.n_features != model.network.sizes[0]:
        raise ValueError(
            f"data set {dataset.name!r} has {dataset.n_features} inputs but the model takes "
            f"{model.network.sizes[0]}: give the data set it was trained on"
        )
    index = stratified_indices(dataset.y_test, subset or 0, seed)
    x, y = dataset.x_test[index], dataset.y_test[index]
    with ValidationExecutor(workers, scheduler=scheduler) as executor:
        result = validate_circuit(model, x, y, executor)
    figures = result.summary()
    ops = model.operations_per_inference()
    figures.update(
        {
            "model": str(path),
            "dataset": dataset.name,
            "level": meta.get("level"),
            "kind": meta.get("kind"),
            "subset": "whole test split"
            if len(index) == len(dataset.y_test)
            else f"stratified random subset of {len(index)} of {len(dataset.y_test)} test examples "
            f"(seed {seed})",
            "operations_per_inference": ops,
            "read_time_s": read_time_s,
            "tops_per_w_spice": tops_per_watt(ops, figures["power_spice_w"], read_time_s),
            "tops_per_w_surrogate": tops_per_watt(ops, figures["power_surrogate_w"], read_time_s),
            "surrogate": model.layers[0].surrogate.kind,
            "note": "TOPS/W counts the crossbar arrays only: drivers, ADCs and digital circuits are "
            "not included",
        }
    )
    return figures


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a model file in ngspice and print its figures."""
    figures = validate_model_file(
        args.model,
        subset=args.subset,
        seed=args.seed,
        workers=args.workers,
        scheduler=args.scheduler,
        data_dir=args.data_dir,
        read_time_s=args.read_time,
    )
    if args.json:
        print(json.dumps(figures))
        return 0
    print(
        f"{figures['model']}: {figures['kind']} network, level {figures['level']}, {figures['dataset']}, "
        f"{figures['subset']}, {figures['ngspice_version']}"
    )
    print(f"{'':<28} {'ngspice':>12} {'surrogate':>12}")
    print(
        f"{'accuracy':<28} {100 * figures['accuracy_spice']:>11.2f}% "
        f"{100 * figures['accuracy_surrogate']:>11.2f}%"
    )
    print(
        f"{'power per inference (W)':<28} {figures['power_spice_w']:>12.4e} "
        f"{figures['power_surrogate_w']:>12.4e}"
    )
    print(
        f"{'TOPS/W (arrays only)':<28} {figures['tops_per_w_spice']:>12.2f} "
        f"{figures['tops_per_w_surrogate']:>12.2f}"
    )
    for k, layer in enumerate(figures["layers"]):
        print(
            f"layer {k}: current NRMSE {layer['nrmse_current']:.2e}, output NRMSE {layer['nrmse_output']:.2e}"
        )
    parts = ", ".join(f"{k} {v:.3e}" for k, v in figures["power_breakdown_spice_w"].items())
    print(f"ngspice power breakdown (W): {parts}")
    print(f"{figures['note']}; read time {figures['read_time_s'] * 1e9:g} ns")
    return 0
