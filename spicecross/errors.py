"""Exception hierarchy of spicecross.

Bad arguments raise the built-in ``ValueError`` or ``TypeError`` with the
argument name, the value received and the fix. Failures of the pipeline raise
a subclass of :class:`SpicecrossError`.
"""

from __future__ import annotations


class SpicecrossError(Exception):
    """Base class of every error that spicecross raises on purpose."""


class NetlistError(SpicecrossError):
    """A netlist or device model is invalid, unsafe or cannot be parsed."""


class UnsafeNetlistError(NetlistError):
    """A netlist asks for something that untrusted input may not do.

    Raised for a ``.control`` block, a ``shell`` command, or an ``.include``/
    ``.lib`` outside the allowed folders, unless the caller opted in.
    """


class SimulationError(SpicecrossError):
    """ngspice failed to run a netlist.

    Carries what is needed to reproduce the failure: the netlist text, the
    ngspice version and the simulator output.
    """

    def __init__(self, message: str, *, netlist: str | None = None,
                 ngspice_version: str | None = None, output: str | None = None,
                 run_dir: str | None = None):
        super().__init__(message)
        self.netlist = netlist
        self.ngspice_version = ngspice_version
        self.output = output
        self.run_dir = run_dir

    def __reduce__(self):
        # Keep the extra fields when the error crosses a process boundary.
        return (_rebuild_simulation_error,
                (type(self), str(self), self.netlist, self.ngspice_version,
                 self.output, self.run_dir))


def _rebuild_simulation_error(cls, message, netlist, version, output, run_dir):
    return cls(message, netlist=netlist, ngspice_version=version,
               output=output, run_dir=run_dir)


class ConvergenceError(SimulationError):
    """A DC operating point did not converge, in ngspice or the exact solver."""


class SimulatorNotFoundError(SimulationError):
    """ngspice or its shared library is not installed or cannot be loaded."""


class CalibrationError(SpicecrossError):
    """A sweep or fit of the calibration stage failed."""
