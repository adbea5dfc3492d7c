"""ngspice netlists: writing crossbars, reading any netlist, inspection, lint and safety checks."""
