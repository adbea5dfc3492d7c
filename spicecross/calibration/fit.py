"""Fitting the surrogate family to tile sweeps.

* ``ideal`` and ``device_only`` have nothing to fit beyond the device law.
* ``ir_drop``: for each candidate number of relaxation sweeps, ``log_scale_word``
  and ``log_scale_bit`` are fitted by L-BFGS (torch, float64) to minimise the
  NRMSE of the bit-line currents on the training tiles. The smallest count whose
  training NRMSE is at most ``sweeps_target`` is kept (fewer sweeps cost less),
  or else the count with the lowest NRMSE.
* ``learned``: the per-column network of
  :class:`~spicecross.surrogates.learned.LearnedCorrectionSurrogate` is trained
  with Adam on the residual of the fitted IR-drop surrogate, which stays frozen.
* ``exact`` needs no fit; it is built when :mod:`spicecross.sim.exact_torch` is
  present and the law is a built-in law with fixed parameters.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math

import torch

from spicecross.calibration.tiles import TileSet
from spicecross.surrogates.law import FittedLaw
from spicecross.surrogates.learned import LearnedCorrectionSurrogate
from spicecross.surrogates.models import (
    CrossbarSurrogate,
    DeviceOnlySurrogate,
    ExactSurrogate,
    IdealSurrogate,
    IRDropSurrogate,
    Wiring,
)

logger = logging.getLogger(__name__)

SURROGATE_NAMES = ("ideal", "device_only", "ir_drop", "learned", "exact")


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread inside the block.

    The fits here work on small tensors, where torch's thread pool costs more
    than it gains: a two-thread Adam step on the learned correction was about
    ten times slower than a one-thread step on a 2-core machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def tile_tensors(tiles: TileSet, max_vectors: int | None = None):
    """Yield ``(v, g, currents, power)`` of each tile as float64 tensors (V, S, A, W).

    ``max_vectors`` keeps only the first that many input vectors of each tile.
    """
    keep = slice(None, max_vectors)
    for k in range(len(tiles.kinds)):
        yield (
            torch.as_tensor(tiles.voltages[k][keep]),
            torch.as_tensor(tiles.conductances[k]),
            torch.as_tensor(tiles.currents[k][keep]),
            torch.as_tensor(tiles.power[k][keep]),
        )


def current_nrmse_loss(
    model: CrossbarSurrogate, tiles: TileSet, max_vectors: int | None = None
) -> torch.Tensor:
    """Return the NRMSE of the bit-line currents of ``model`` over ``tiles``, as a differentiable tensor."""
    num = torch.zeros((), dtype=torch.float64)
    den = torch.zeros((), dtype=torch.float64)
    for v, g, currents, _ in tile_tensors(tiles, max_vectors):
        num = num + torch.sum((model(v, g).currents - currents) ** 2)
        den = den + torch.sum(currents**2)
    return torch.sqrt(num / den)


def fit_ir_drop(
    law: FittedLaw,
    wiring: Wiring,
    train: TileSet,
    *,
    sweep_counts=(1, 2, 4, 8),
    sweeps_target: float = 0.005,
    max_iter: int = 30,
    max_vectors: int = 16,
) -> tuple[IRDropSurrogate, dict]:
    """Fit the IR-drop surrogate's wire scales for each sweep count and keep the cheapest good one.

    Args:
        law: the device law.
        wiring: the tiles' resistances, Ω.
        train: training tiles.
        sweep_counts: candidate numbers of relaxation sweeps.
        sweeps_target: training NRMSE (fraction) that a sweep count must reach to be chosen.
        max_iter: L-BFGS iterations per count.
        max_vectors: input vectors per tile used in the fit; two scale factors need few.

    Returns:
        The chosen model and ``{"sweeps": chosen, "by_sweeps": {count: {nrmse, log_scale_word, ...}}}``.
    """
    with single_thread():
        return _fit_ir_drop(law, wiring, train, sweep_counts, sweeps_target, max_iter, max_vectors)


def _fit_ir_drop(law, wiring, train, sweep_counts, sweeps_target, max_iter, max_vectors):
    results, models = {}, {}
    for count in sorted(set(int(c) for c in sweep_counts)):
        model = IRDropSurrogate(law, wiring, sweeps=count)
        start = float(current_nrmse_loss(model, train, max_vectors).detach())
        if math.isfinite(start):
            optimizer = torch.optim.LBFGS(
                model.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe"
            )

            def closure(optimizer=optimizer, model=model):
                optimizer.zero_grad()
                loss = current_nrmse_loss(model, train, max_vectors)
                loss.backward()
                return loss

            optimizer.step(closure)
        final = float(current_nrmse_loss(model, train, max_vectors).detach())
        if not math.isfinite(final) or final > start:
            # The fit diverged (the relaxation does not converge at this IR drop): keep the unfitted scales.
            with torch.no_grad():
                model.log_scale_word.zero_()
                model.log_scale_bit.zero_()
            final = start
        results[count] = {
            "nrmse": final if math.isfinite(final) else None,
            "unfitted_nrmse": start if math.isfinite(start) else None,
            "log_scale_word": model.log_scale_word.item(),
            "log_scale_bit": model.log_scale_bit.item(),
        }
        models[count] = model
        logger.info("ir_drop with %d sweeps: training NRMSE %.3g (unfitted %.3g)", count, final, start)
    finite = {c: r["nrmse"] for c, r in results.items() if r["nrmse"] is not None}
    if not finite:
        chosen = min(models)
    else:
        good = [c for c, e in sorted(finite.items()) if e <= sweeps_target]
        chosen = good[0] if good else min(finite, key=finite.get)
    return models[chosen], {"sweeps": chosen, "sweeps_target": sweeps_target, "by_sweeps": results}


def fit_learned(
    base: CrossbarSurrogate,
    train: TileSet,
    *,
    hidden: int = 16,
    steps: int = 400,
    lr: float = 1e-2,
    seed: int = 0,
) -> tuple[LearnedCorrectionSurrogate, dict]:
    """Train the per-column correction of ``base`` (kept frozen) on the training tiles.

    The loss is the NRMSE of the corrected bit-line currents. Features are
    standardised with their training mean and standard deviation, stored in the model.
    """
    with single_thread():
        return _fit_learned(base, train, hidden, steps, lr, seed)


def _fit_learned(base, train, hidden, steps, lr, seed):
    torch.manual_seed(seed)
    model = LearnedCorrectionSurrogate(base, hidden=hidden)
    for p in model.base.parameters():
        p.requires_grad_(False)
    feats, base_i, target = [], [], []
    with torch.no_grad():
        for v, g, currents, _ in tile_tensors(train):
            out = base(v, g)
            column_features = model.features(v, g, out.currents)
            feats.append(column_features.reshape(-1, column_features.shape[-1]))
            base_i.append(out.currents.reshape(-1))
            target.append(currents.reshape(-1))
    feats, base_i, target = torch.cat(feats), torch.cat(base_i), torch.cat(target)
    finite = torch.isfinite(feats).all(dim=1) & torch.isfinite(base_i)
    feats, base_i, target = feats[finite], base_i[finite], target[finite]
    with torch.no_grad():
        model.feature_mean.copy_(feats.mean(dim=0))
        model.feature_scale.copy_(torch.clamp(feats.std(dim=0), min=1e-12))
    norm = torch.sqrt(torch.mean(target**2))
    before = float(torch.sqrt(torch.mean((base_i - target) ** 2)) / norm)
    optimizer = torch.optim.Adam(model.net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    loss = torch.tensor(before)
    for _ in range(steps):
        optimizer.zero_grad()
        pred = base_i * (1.0 + model.correction(feats))
        loss = torch.sqrt(torch.mean((pred - target) ** 2)) / norm
        loss.backward()
        optimizer.step()
        schedule.step()
    for p in model.base.parameters():
        p.requires_grad_(True)
    after = float(loss.detach())
    logger.info("learned correction: training NRMSE %.3g -> %.3g", before, after)
    return model, {
        "hidden": hidden,
        "steps": steps,
        "lr": lr,
        "training_samples": int(target.numel()),
        "base_training_nrmse": before,
        "training_nrmse": after,
    }


def exact_unavailable_reason(law: FittedLaw) -> str | None:
    """Return why the exact surrogate cannot be built for ``law``, or None when it can."""
    if importlib.util.find_spec("spicecross.sim.exact_torch") is None:
        return "spicecross.sim.exact_torch is not installed in this tree yet"
    if law.name == "table":
        return "the exact solver needs a built-in law; this device is described by a table"
    if law.n_coeffs is not None:
        return (
            "ExactSurrogate builds its device from law.params only, so a power law with n(G) would be "
            "solved with the default n"
        )
    return None


def fit_family(
    law: FittedLaw,
    wiring: Wiring,
    train: TileSet,
    *,
    names=SURROGATE_NAMES,
    sweep_counts=(1, 2, 4, 8),
    sweeps_target: float = 0.005,
    learned_hidden: int = 16,
    learned_steps: int = 400,
    seed: int = 0,
) -> tuple[dict, dict]:
    """Build and fit every surrogate in ``names``; return ``({name: model}, {name: fit details})``."""
    unknown = [n for n in names if n not in SURROGATE_NAMES]
    if unknown:
        raise ValueError(f"unknown surrogate(s) {unknown}: choose from {list(SURROGATE_NAMES)}")
    with single_thread():
        return _fit_family(
            law, wiring, train, names, sweep_counts, sweeps_target, learned_hidden, learned_steps, seed
        )


def _fit_family(law, wiring, train, names, sweep_counts, sweeps_target, learned_hidden, learned_steps, seed):
    models, details = {}, {}
    if "ideal" in names:
        models["ideal"], details["ideal"] = IdealSurrogate(law, wiring), {}
    if "device_only" in names:
        models["device_only"], details["device_only"] = DeviceOnlySurrogate(law, wiring), {}
    if "ir_drop" in names or "learned" in names:
        ir_drop, details["ir_drop"] = fit_ir_drop(
            law, wiring, train, sweep_counts=sweep_counts, sweeps_target=sweeps_target
        )
        if "ir_drop" in names:
            models["ir_drop"] = ir_drop
        if "learned" in names:
            models["learned"], details["learned"] = fit_learned(
                ir_drop, train, hidden=learned_hidden, steps=learned_steps, seed=seed
            )
    if "exact" in names:
        reason = exact_unavailable_reason(law)
        if reason is None:
            models["exact"], details["exact"] = ExactSurrogate(law, wiring), {}
        else:
            details["exact"] = {"skipped": reason}
            logger.warning("exact surrogate skipped: %s", reason)
    return models, details


def wiring_of(tiles: TileSet) -> Wiring:
    """Return the (scalar) wiring of a tile set, Ω."""
    c = tiles.conditions
    return Wiring(float(c.r_word), float(c.r_bit), float(c.r_source), float(c.r_sense))


__all__ = [
    "SURROGATE_NAMES",
    "current_nrmse_loss",
    "exact_unavailable_reason",
    "fit_family",
    "fit_ir_drop",
    "fit_learned",
    "tile_tensors",
    "wiring_of",
]
