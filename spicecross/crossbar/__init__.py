"""Crossbar arrays: their specification, circuit topology, weight mapping and tiling."""

from spicecross.crossbar.spec import CrossbarSpec

__all__ = ["CrossbarSpec"]
