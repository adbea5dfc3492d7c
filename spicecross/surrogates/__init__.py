"""Differentiable surrogate models of crossbar tiles, fitted to ngspice sweeps."""

# Importing the learned correction registers its kind, so load_surrogate can rebuild it.
import spicecross.surrogates.learned  # noqa: F401
from spicecross.surrogates.law import FittedLaw
from spicecross.surrogates.models import (
                                          SURROGATE_KINDS,
                                          CrossbarSurrogate,
                                          DeviceOnlySurrogate,
                                          ExactSurrogate,
                                          IdealSurrogate,
                                          IRDropSurrogate,
                                          SurrogateOutput,
                                          Wiring,
)

__all__ = ["SURROGATE_KINDS", "CrossbarSurrogate", "DeviceOnlySurrogate", "ExactSurrogate", "FittedLaw",
           "IRDropSurrogate", "IdealSurrogate", "SurrogateOutput", "Wiring"]
