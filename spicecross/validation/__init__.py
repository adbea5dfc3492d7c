"""Circuit-level validation: trained crossbar networks solved in ngspice next to their surrogates."""

from spicecross.validation.circuit import (
    VALIDATION_OPTIONS,
    CircuitResult,
    LayerRecord,
    TileRecord,
    tile_spec,
    validate_circuit,
)
from spicecross.validation.executor import ValidationExecutor
from spicecross.validation.metrics import DEFAULT_READ_TIME_S, accuracy, nrmse, tops_per_watt

__all__ = [
    "DEFAULT_READ_TIME_S",
    "VALIDATION_OPTIONS",
    "CircuitResult",
    "LayerRecord",
    "TileRecord",
    "ValidationExecutor",
    "accuracy",
    "nrmse",
    "tile_spec",
    "tops_per_watt",
    "validate_circuit",
]
