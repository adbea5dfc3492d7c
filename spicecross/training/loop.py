"""Training crossbar networks: standard and nonideality-aware, with periodic ngspice validation.

Both kinds use the same optimiser (Adam on the weights and biases only), schedule,
batches and seeds; they differ in the forward pass:

* ``standard``: ideal weights, ``x·W + b`` computed digitally. The crossbar enters only
  at inference, when the weights are mapped to conductances.
* ``aware``: the crossbar surrogate (device law, wires, chip variation, ADC) in the
  forward pass, with gradients through it.

Every ``validate_every`` epochs the current weights are solved in ngspice on a
fixed subset of the validation split (:class:`PeriodicValidator`). The check runs
in a background thread while the next epoch trains, and its result is collected
at the end of that epoch, so runs with the same seeds take the same decisions.
A check logs ngspice and surrogate accuracy, per-layer NRMSE and power. When a
layer's output NRMSE exceeds ``nrmse_bound``, the surrogate is refitted on the
ngspice currents just computed (:func:`~spicecross.training.surrogates.recalibrate`).
The best model by ngspice-validated accuracy is kept and written as a checkpoint.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from spicecross.nn.config import ConfigurationError
from spicecross.nn.network import CrossbarMLP, load_model, save_model
from spicecross.training.surrogates import describe, recalibrate

logger = logging.getLogger(__name__)

KINDS = ("standard", "aware")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (the same for both kinds).

    Attributes:
        epochs: passes over the training split.
        batch_size: examples per optimiser step.
        lr: Adam learning rate.
        schedule: ``cosine`` (annealed to 0 over the run) or ``constant``.
        weight_decay: Adam weight decay.
        seed: seed of the initial weights and of the batch order.
        validate_every: epochs between ngspice checks (0: none); the last epoch is always checked.
        spice_subset: validation examples solved in ngspice at each check (stratified, fixed).
        nrmse_bound: largest output NRMSE (surrogate against ngspice) of a layer before the
            surrogate is re-calibrated.
        dtype: ``float32`` or ``float64`` for the forward and backward passes.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.01
    schedule: str = "cosine"
    weight_decay: float = 0.0
    seed: int = 0
    validate_every: int = 10
    spice_subset: int = 48
    nrmse_bound: float = 0.02
    dtype: str = "float32"

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigurationError(
                f"epochs={self.epochs}, batch_size={self.batch_size} are invalid: both must be >= 1"
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigurationError(f"lr={self.lr!r} is invalid: give a positive learning rate such as 0.01")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigurationError(f"schedule={self.schedule!r} is invalid: use 'cosine' or 'constant'")
        if self.validate_every < 0 or self.spice_subset < 0:
            raise ConfigurationError(
                "validate_every and spice_subset must be >= 0 (0 disables the ngspice checks)"
            )
        if self.dtype not in DTYPES:
            raise ConfigurationError(f"dtype={self.dtype!r} is invalid: use {sorted(DTYPES)}")

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        return asdict(self)


@dataclass
class EpochRecord:
    """Figures of one epoch: training loss and accuracy, validation accuracy (ideal and surrogate), power."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy_ideal: float
    val_accuracy_surrogate: float
    val_power_surrogate_w: float
    seconds: float


@dataclass
class SpiceCheck:
    """A periodic ngspice validation of the weights after ``epoch``."""

    epoch: int
    accuracy_spice: float
    accuracy_surrogate: float
    nrmse_output: list
    nrmse_current: list
    power_spice_w: float
    power_surrogate_w: float
    seconds: float
    recalibration: dict | None = None
    best: bool = False


#: Format tag of the training state that :func:`train` writes after every epoch.
TRAINING_STATE_FORMAT = "spicecross-training-state-1"


def _save_training_state(folder: Path, model, kind, config, epoch, optimizer, scheduler, generator,
                         history, checks, best, *, check_due: bool) -> None:
    """Write the state after ``epoch``: the model, then the rest, each file atomically.

    Models of odd and even epochs go to two files, and the state file, written last,
    names the current one. A stop between the two writes therefore leaves the previous
    epoch's state and model intact.
    """
    folder.mkdir(parents=True, exist_ok=True)
    model_name = f"model-{epoch % 2}.pt"
    save_model(model, folder / model_name, metadata={"epoch": epoch})
    state = {
        "format": TRAINING_STATE_FORMAT,
        "model_file": model_name,
        "kind": kind,
        "config": asdict(config),
        "epoch": epoch,
        "check_due": check_due,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": [asdict(h) for h in history],
        "checks": [asdict(c) for c in checks],
        "best_key": list(best["key"]) if best["key"] is not None else None,
        "best_epoch": best["epoch"],
    }
    tmp = folder / ".state.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(folder / "state.pt")


def _load_training_state(folder: Path, model, kind, config, checkpoint) -> dict | None:
    """Return the saved state and load its weights and surrogates into ``model``.

    Return None when there is no state, or when the state belongs to another training
    (kind or settings) or does not match its model file. Training then starts from epoch 1.
    """
    state_file = folder / "state.pt"
    if not state_file.is_file():
        return None
    try:
        state = torch.load(state_file, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged or foreign file: start again rather than fail the run
        # Only the type is logged because torch's message advises the unsafe weights_only=False.
        logger.warning("ignoring the training state %s because torch.load could not read it (%s): "
                       "training starts from epoch 1", state_file, type(exc).__name__)
        return None
    try:
        saved = load_model(folder / str(state["model_file"]), expected=model.config())
        best = None
        if state.get("best_epoch"):
            best = load_model(checkpoint, expected=model.config())
    except Exception as exc:  # a damaged or foreign file: start again rather than fail the run
        logger.warning("ignoring the training state in %s (%s: %s): training starts from epoch 1",
                       folder, type(exc).__name__, exc)
        return None
    matches = (
        isinstance(state, dict)
        and state.get("format") == TRAINING_STATE_FORMAT
        and state.get("kind") == kind
        and state.get("config") == asdict(config)
        and saved.metadata.get("epoch") == state.get("epoch")
        and (best is None or (best.metadata.get("epoch"), best.metadata.get("kind"))
             == (state.get("best_epoch"), kind))
    )
    if not matches:
        logger.warning("the training state in %s does not match this training (its kind, settings, "
                       "model file or best-model file %s differ): training starts from epoch 1",
                       folder, checkpoint)
        return None
    state["best_model"] = best.model if best is not None else None
    for index, layer in enumerate(saved.model.layers):
        model.set_surrogate(layer.surrogate.to(next(model.parameters()).dtype), index)
    model.load_state_dict(saved.model.state_dict())
    return state


@dataclass
class TrainResult:
    """The outcome of :func:`train`.

    Attributes:
        model: the best model by ngspice-validated accuracy (the last one without checks).
        kind: ``standard`` or ``aware``.
        history: one record per epoch.
        checks: the ngspice checks.
        best_epoch: epoch of the returned model.
        surrogate: the surrogate of the returned model, described.
        seconds: wall time of the training, s.
    """

    model: CrossbarMLP
    kind: str
    history: list
    checks: list
    best_epoch: int
    surrogate: str
    seconds: float

    def to_dict(self) -> dict:
        """Return the JSON-ready figures (without the model)."""
        return {
            "kind": self.kind,
            "best_epoch": self.best_epoch,
            "surrogate": self.surrogate,
            "seconds": self.seconds,
            "history": [asdict(h) for h in self.history],
            "checks": [asdict(c) for c in self.checks],
        }


def stratified_indices(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Return ``count`` sorted indices of ``labels``, stratified by class (all when count >= len)."""
    labels = np.asarray(labels)
    if count <= 0 or count >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = np.floor(counts / counts.sum() * count).astype(int)
    for k in np.argsort(-(counts / counts.sum() * count - share))[: count - share.sum()]:
        share[k] += 1
    picked = [
        rng.choice(np.flatnonzero(labels == c), size=n, replace=False)
        for c, n in zip(classes, share, strict=True)
    ]
    return np.sort(np.concatenate(picked))


class PeriodicValidator:
    """Runs ngspice checks of a network in a background thread, one at a time.

    Args:
        executor: where the netlists run (:class:`~spicecross.validation.executor.ValidationExecutor`).
        x, labels: the fixed validation subset. Shape: (n, inputs) and (n,).
        options: ngspice options of the netlists.
    """

    def __init__(self, executor, x: np.ndarray, labels: np.ndarray, *, options: dict | None = None):
        self.executor = executor
        self.x = np.asarray(x, dtype=float)
        self.labels = np.asarray(labels)
        self.options = options
        self._pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="spice-check")

    def submit(self, model: CrossbarMLP) -> cf.Future:
        """Start a check of a snapshot of ``model``; the future returns a CircuitResult."""
        from spicecross.validation.circuit import validate_circuit

        snapshot = copy.deepcopy(model).double()
        return self._pool.submit(
            validate_circuit, snapshot, self.x, self.labels, self.executor, options=self.options
        )

    def close(self) -> None:
        """Wait for a running check and stop the thread."""
        self._pool.shutdown(wait=True)


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    return [order[k : k + batch_size] for k in range(0, n, batch_size)]


def _evaluate(model: CrossbarMLP, x: torch.Tensor, y: torch.Tensor, crossbar: bool) -> tuple[float, float]:
    """Return (accuracy, mean power W) of the ideal or the surrogate network on ``x``."""
    with torch.no_grad():
        if not crossbar:
            logits = model.forward_ideal(x)
            return float((logits.argmax(1) == y).double().mean()), float("nan")
        out = model(x)
        return float((out.logits.argmax(1) == y).double().mean()), float(out.power.mean())


def train(
    model: CrossbarMLP,
    dataset,
    config: TrainConfig,
    kind: str,
    *,
    validator: PeriodicValidator | None = None,
    checkpoint: str | Path | None = None,
    metadata: dict | None = None,
    progress: bool = False,
    description: str = "",
    resume_dir: str | Path | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` (a :class:`~spicecross.data.Dataset`) and return the best model.

    Args:
        model: the network; trained in place, and its surrogates may be re-calibrated.
        dataset: train and validation splits are used; the test split is not touched.
        config: optimiser, schedule, seeds and check settings.
        kind: ``standard`` or ``aware``.
        validator: runs the periodic ngspice checks; None trains without them.
        checkpoint: file (``.pt``) that receives the best ngspice-validated model.
        metadata: stored in the checkpoint with the training history.
        progress: show a progress bar on stderr.
        description: label of the progress bar.
        resume_dir: folder for the training state after every epoch. When it contains the
            state of an interrupted training of the same kind and settings, training goes
            on from that epoch and ends with the same weights as an uninterrupted one.
            The caller removes the folder once it has stored the result. Needs ``checkpoint``.
    """
    if kind not in KINDS:
        raise ConfigurationError(f"training kind {kind!r} is invalid: use one of {list(KINDS)}")
    start = time.perf_counter()
    dtype = DTYPES[config.dtype]
    model.to(dtype)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    x_train = torch.as_tensor(dataset.x_train, dtype=dtype)
    y_train = torch.as_tensor(dataset.y_train)
    x_val = torch.as_tensor(dataset.x_val, dtype=dtype)
    y_val = torch.as_tensor(dataset.y_val)
    optimizer = torch.optim.Adam(model.weight_parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
        if config.schedule == "cosine"
        else None
    )

    history: list[EpochRecord] = []
    checks: list[SpiceCheck] = []
    best = {"key": None, "model": None, "epoch": 0}
    pending: tuple[int, cf.Future, float] | None = None

    def collect(entry):
        epoch, future, submitted = entry
        result = future.result()
        summary = result.summary()
        check = SpiceCheck(
            epoch=epoch,
            accuracy_spice=result.accuracy_spice,
            accuracy_surrogate=result.accuracy_surrogate,
            nrmse_output=[layer.nrmse_output for layer in result.layers],
            nrmse_current=[layer.nrmse_current for layer in result.layers],
            power_spice_w=summary["power_spice_w"],
            power_surrogate_w=summary["power_surrogate_w"],
            seconds=time.perf_counter() - submitted,
        )
        logger.info(
            "%s epoch %d ngspice check: accuracy %.3f (surrogate %.3f), power %.3e W, output NRMSE %s",
            description,
            epoch,
            check.accuracy_spice,
            check.accuracy_surrogate,
            check.power_spice_w,
            ", ".join(f"{e:.2e}" for e in check.nrmse_output),
        )
        recalibrations = {}
        for index, layer_record in enumerate(result.layers):
            if layer_record.nrmse_output > config.nrmse_bound:
                surrogate, report = recalibrate(model.layers[index].surrogate, layer_record.tiles)
                model.set_surrogate(surrogate.to(dtype), index)
                snapshots[epoch].set_surrogate(surrogate.to(dtype), index)
                recalibrations[index] = report.to_dict()
                logger.warning(
                    "%s epoch %d: layer %d surrogate output NRMSE %.2e exceeds %.2e; refitted its "
                    "parameters on the ngspice currents (current NRMSE %.2e -> %.2e)",
                    description,
                    epoch,
                    index,
                    layer_record.nrmse_output,
                    config.nrmse_bound,
                    report.before,
                    report.after,
                )
        check.recalibration = recalibrations or None
        # Ties in ngspice accuracy (a small subset) go to the better surrogate accuracy, then the later epoch.
        key = (check.accuracy_spice, history[epoch - 1].val_accuracy_surrogate, epoch)
        if best["key"] is None or key > best["key"]:
            best.update(key=key, model=snapshots.pop(epoch), epoch=epoch)
            check.best = True
            if checkpoint is not None:
                save_model(
                    best["model"],
                    checkpoint,
                    metadata={**(metadata or {}), "kind": kind, "epoch": epoch, "spice_check": asdict(check)},
                )
        snapshots.pop(epoch, None)
        checks.append(check)

    snapshots: dict[int, CrossbarMLP] = {}
    first_epoch = 1
    state = None
    if resume_dir is not None and checkpoint is not None:
        state = _load_training_state(Path(resume_dir), model, kind, config, checkpoint)
    if state is not None:
        first_epoch = state["epoch"] + 1
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = [EpochRecord(**record) for record in state["history"]]
        checks = [SpiceCheck(**check) for check in state["checks"]]
        if state["best_model"] is not None:
            best.update(key=tuple(state["best_key"]), epoch=state["best_epoch"],
                        model=state["best_model"].to(dtype))
        if state["check_due"] and validator is not None:
            snapshots[state["epoch"]] = copy.deepcopy(model)
            pending = (state["epoch"], validator.submit(model), time.perf_counter())
        logger.info("%s: resuming training after epoch %d of %d", description, state["epoch"], config.epochs)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.epochs, initial=first_epoch - 1, desc=description or kind, unit="epoch",
                   leave=False)
    try:
        for epoch in range(first_epoch, config.epochs + 1):
            epoch_start = time.perf_counter()
            model.train()
            total_loss, correct = 0.0, 0
            for index in _batches(len(x_train), config.batch_size, generator):
                xb, yb = x_train[index], y_train[index]
                logits = model.forward_ideal(xb) if kind == "standard" else model(xb).logits
                loss = F.cross_entropy(logits, yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total_loss += float(loss.detach()) * len(index)
                correct += int((logits.detach().argmax(1) == yb).sum())
            if scheduler is not None:
                scheduler.step()
            model.eval()
            acc_ideal, _ = _evaluate(model, x_val, y_val, crossbar=False)
            acc_surrogate, power = _evaluate(model, x_val, y_val, crossbar=True)
            history.append(
                EpochRecord(
                    epoch,
                    total_loss / len(x_train),
                    correct / len(x_train),
                    acc_ideal,
                    acc_surrogate,
                    power,
                    time.perf_counter() - epoch_start,
                )
            )
            if pending is not None:
                collect(pending)
                pending = None
            due = (
                validator is not None
                and config.validate_every > 0
                and (epoch % config.validate_every == 0 or epoch == config.epochs)
            )
            if resume_dir is not None and checkpoint is not None:
                _save_training_state(Path(resume_dir), model, kind, config, epoch, optimizer, scheduler,
                                     generator, history, checks, best, check_due=due)
            if due:
                snapshots[epoch] = copy.deepcopy(model)
                pending = (epoch, validator.submit(model), time.perf_counter())
            if bar is not None:
                bar.set_postfix(
                    loss=f"{history[-1].train_loss:.3f}",
                    val=f"{acc_surrogate:.3f}",
                    spice=f"{checks[-1].accuracy_spice:.3f}" if checks else "-",
                )
                bar.update(1)
        if pending is not None:
            collect(pending)
    finally:
        if bar is not None:
            bar.close()
    if best["model"] is None:
        final = model
        best_epoch = config.epochs
        if checkpoint is not None:
            save_model(final, checkpoint, metadata={**(metadata or {}), "kind": kind, "epoch": best_epoch})
    else:
        final, best_epoch = best["model"], best["epoch"]
    return TrainResult(
        model=final,
        kind=kind,
        history=history,
        checks=checks,
        best_epoch=best_epoch,
        surrogate=describe(final.layers[0].surrogate),
        seconds=time.perf_counter() - start,
    )
