"""Neural-network layers computed by crossbars, and networks built from them.

:class:`CrossbarLinear` maps a weight matrix onto differential conductance pairs
and runs a surrogate of the circuit in its forward pass; :class:`CrossbarMLP`
stacks such layers with digital activations in between.
"""

from spicecross.nn.config import (
    ConfigurationError,
    CrossbarConfig,
    DeviceConfig,
    VariationConfig,
    check_power_level,
)
from spicecross.nn.layer import CrossbarLinear, CrossbarOutput
from spicecross.nn.network import (
    CrossbarMLP,
    LoadedModel,
    ModelConfigError,
    NetworkConfig,
    NetworkOutput,
    load_model,
    save_model,
)

__all__ = [
    "ConfigurationError",
    "CrossbarConfig",
    "CrossbarLinear",
    "CrossbarMLP",
    "CrossbarOutput",
    "DeviceConfig",
    "LoadedModel",
    "ModelConfigError",
    "NetworkConfig",
    "NetworkOutput",
    "VariationConfig",
    "check_power_level",
    "load_model",
    "save_model",
]
