"""Training crossbar networks (standard and nonideality-aware) with periodic ngspice validation."""

from spicecross.training.loop import (
    KINDS,
    EpochRecord,
    PeriodicValidator,
    SpiceCheck,
    TrainConfig,
    TrainResult,
    stratified_indices,
    train,
)
from spicecross.training.surrogates import (
    IR_DROP_CANDIDATES,
    Recalibration,
    SurrogateChoice,
    choose_surrogate,
    describe,
    recalibrate,
)

__all__ = [
    "IR_DROP_CANDIDATES",
    "KINDS",
    "EpochRecord",
    "PeriodicValidator",
    "Recalibration",
    "SpiceCheck",
    "SurrogateChoice",
    "TrainConfig",
    "TrainResult",
    "choose_surrogate",
    "describe",
    "recalibrate",
    "stratified_indices",
    "train",
]
