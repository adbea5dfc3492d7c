"""Running netlists in ngspice, in shared-library mode (through PySpice) or batch mode.

Every run happens in a clean temporary working directory with ``HOME`` pointing
there, so ngspice never reads a ``.spiceinit`` from the user's folders, and batch
mode also passes ``-n`` (no init files). After each shared-library run the
circuit is destroyed and removed (``destroy all``, ``remcirc``), because ngspice
otherwise keeps every circuit and its results in memory.

PySpice's ``NgSpiceShared`` loads the library and captures its output, but its
``exec_command`` raises on any output line containing "error" (ngspice prints
such lines for harmless notes too) and rejects commands over 1,023 characters,
and its ``load_circuit`` has the same "error" check. So this module calls the
library functions (``ngSpice_Circ``, ``ngSpice_Command``, ``ngGet_Vec_Info``)
through PySpice's handle and decides itself what failed.

Results are returned as ``{vector name: values}`` with shared-library names:
node ``wl_r0_c0`` for its voltage (V) and ``vsns_c0#branch`` for the current (A)
into the positive terminal of source ``vsns_c0``.
"""

from __future__ import annotations

import ctypes.util
import functools
import glob
import logging
import multiprocessing.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from spicecross.errors import ConvergenceError, SimulationError, SimulatorNotFoundError

logger = logging.getLogger(__name__)

INSTALL_HINT = ("install ngspice and its shared library from Debian's packages: "
                "'apt-get install ngspice libngspice0' (or run scripts/setup.sh), or set "
                "NGSPICE_LIBRARY_PATH to the full path of libngspice.so.0")

#: Output fragments that mean ngspice gave up on a DC solution.
_CONVERGENCE_MARKERS = ("no convergence", "convergence failed", "solution failed", "iteration limit",
                        "gmin stepping failed", "source stepping failed", "singular matrix",
                        "timestep too small")
#: Output fragments that mean ngspice rejected the netlist while loading it.
_ERROR_MARKERS = ("error on line", "error:", "unknown subckt", "unknown parameter", "could not find",
                  "simulation interrupted", "syntax error", "undefined", "fatal", "no circuit loaded",
                  "there aren't any circuits")
#: Output fragments that mean a run failed. A bare "Error:" is not among them, because
#: ngspice 39 prints messages such as "Error: ... out of range for cosh" in runs that
#: still finish; a failed run is also caught by its missing or short plot.
_RUN_ERROR_MARKERS = ("simulation interrupted", "fatal", "no circuit loaded", "there aren't any circuits",
                      "run simulation(s) aborted")


def find_library() -> str:
    """Return the path of libngspice, honouring ``NGSPICE_LIBRARY_PATH``.

    Debian 12 ships only ``libngspice.so.0`` unless ``libngspice0-dev`` is installed,
    so the versioned name is searched too.

    Raises:
        SimulatorNotFoundError: when no library is found.
    """
    env = os.environ.get("NGSPICE_LIBRARY_PATH")
    if env:
        if Path(env).exists():
            return env
        raise SimulatorNotFoundError(
            f"NGSPICE_LIBRARY_PATH={env!r} does not exist: unset it to let spicecross find libngspice, "
            "or set it to the full path of libngspice.so.0 (dpkg -L libngspice0 lists it)")
    candidates = []
    for pattern in ("/usr/lib/*/libngspice.so", "/usr/lib/*/libngspice.so.0", "/usr/lib/libngspice.so*",
                    "/usr/local/lib/libngspice.so*", "/usr/lib64/libngspice.so*"):
        candidates += sorted(glob.glob(pattern))
    found = ctypes.util.find_library("ngspice")
    if found:
        candidates.append(found if os.path.isabs(found) else found)
    for path in candidates:
        if os.path.isabs(path) and Path(path).exists():
            return path
    raise SimulatorNotFoundError(f"libngspice not found: {INSTALL_HINT}")


def find_executable() -> str:
    """Return the path of the ``ngspice`` program, or raise SimulatorNotFoundError."""
    path = shutil.which("ngspice")
    if path is None:
        raise SimulatorNotFoundError("the ngspice program is not on PATH, and batch mode needs it: "
                                     "install it with 'apt-get install ngspice', or use --mode shared")
    return path


def _clean_env(home: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPICE_", "NGSPICE_"))}
    env["HOME"] = home
    return env


@functools.lru_cache(maxsize=1)
def batch_version() -> str:
    """Return the version that the ``ngspice`` program reports, such as ``ngspice-39``."""
    exe = find_executable()
    with tempfile.TemporaryDirectory(prefix="spicecross-ng-") as tmp:
        out = subprocess.run([exe, "-v"], capture_output=True, text=True, cwd=tmp,
                             env=_clean_env(tmp), timeout=30, stdin=subprocess.DEVNULL)
    match = re.search(r"ngspice-(\S+)", out.stdout + out.stderr)
    return _with_package(f"ngspice-{match.group(1)}" if match else "ngspice-unknown")


def _with_package(version: str) -> str:
    """Append the Debian package version, which distinguishes 39.3 from 39.0 where ngspice prints only 39."""
    package = package_version()
    return f"{version} (Debian {package})" if package else version


@functools.lru_cache(maxsize=1)
def package_version() -> str | None:
    """Return the Debian package version of libngspice0 (for example ``39.3+ds-1``), if known."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libngspice0"], capture_output=True,
                             text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _classify_failure(output: str, message: str, netlist: str, version: str | None) -> SimulationError:
    lower = output.lower()
    cls = ConvergenceError if any(m in lower for m in _CONVERGENCE_MARKERS) else SimulationError
    tail = "\n".join(line for line in output.splitlines() if line.strip())[-2000:]
    return cls(f"{message}\n--- ngspice output (end) ---\n{tail}", netlist=netlist,
               ngspice_version=version, output=output)


# ------------------------------------------------------------ batch mode ----

#: ngspice programs that :func:`run_batch` started in this process and that are still running.
_RUNNING: set[subprocess.Popen] = set()


@functools.lru_cache(maxsize=1)
def _death_signal_prefix() -> tuple[str, ...]:
    """Return the command prefix that kills ngspice once the thread that started it is gone.

    On Linux, util-linux's ``setpriv --pdeathsig KILL`` sets the parent-death
    signal and then runs ngspice in its place. So a main process killed with
    SIGKILL while a sweep thread waits for ngspice takes ngspice with it. Where
    setpriv is missing or lacks the option, the prefix is empty.
    """
    setpriv = shutil.which("setpriv")
    if not sys.platform.startswith("linux") or setpriv is None:
        return ()
    probe = subprocess.run([setpriv, "--pdeathsig", "KILL", "true"], capture_output=True,
                           stdin=subprocess.DEVNULL, check=False)
    return (setpriv, "--pdeathsig", "KILL") if probe.returncode == 0 else ()


def kill_batch_runs() -> None:
    """Kill the ngspice programs that :func:`run_batch` started in this process and that are still running."""
    for proc in list(_RUNNING):
        proc.kill()


def run_batch(netlist: str, *, timeout: float = 600.0) -> tuple[dict, str]:
    """Run ``netlist`` with ``ngspice -b -n -r`` in a clean temporary folder.

    Returns:
        (vectors of the last plot, ngspice output).

    Raises:
        SimulationError, ConvergenceError: on failure, with the output attached.
    """
    from spicecross.sim.rawfile import read_raw

    exe = find_executable()
    with tempfile.TemporaryDirectory(prefix="spicecross-ng-") as tmp:
        cir = Path(tmp, "circuit.cir")
        raw = Path(tmp, "circuit.raw")
        cir.write_text(netlist)
        command = [*_death_signal_prefix(), exe, "-b", "-n", "-r", str(raw), str(cir)]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=tmp, env=_clean_env(tmp),
                                stdin=subprocess.DEVNULL)
        _RUNNING.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
            raise SimulationError(f"ngspice timed out after {timeout:g} s", netlist=netlist,
                                  output=stdout or "") from None
        finally:
            _RUNNING.discard(proc)
        output = stdout + stderr
        lower = output.lower()
        load_failed = any(m in lower for m in _ERROR_MARKERS if m != "error:")
        run_failed = any(m in lower for m in _RUN_ERROR_MARKERS)
        if proc.returncode != 0 or not raw.exists() or load_failed or run_failed:
            raise _classify_failure(output, f"ngspice batch run failed (exit code {proc.returncode})",
                                    netlist, None)
        return read_raw(raw), output


# ---------------------------------------------------- shared-library mode ----

class SharedNgspice:
    """One ngspice shared-library instance in this process.

    Create it in a process of its own (see :mod:`spicecross.sim.runner`): after a
    fatal error the library cannot recover and the process must be replaced.
    """

    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix="spicecross-ng-")
        # Remove the folder when this process exits. multiprocessing's finalizers run
        # at the exit of a worker process too, where atexit handlers do not.
        multiprocessing.util.Finalize(self, shutil.rmtree, args=(self.workdir,),
                                      kwargs={"ignore_errors": True}, exitpriority=0)
        os.environ["HOME"] = self.workdir
        os.chdir(self.workdir)
        os.environ["NGSPICE_LIBRARY_PATH"] = find_library()
        for key in [k for k in os.environ if k.startswith("SPICE_")]:
            del os.environ[key]
        # PySpice logs "Unsupported Ngspice version" for versions it does not list
        # (39 and 44 included); the simulator works all the same.
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)
        try:
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi
        except ImportError as exc:
            raise SimulatorNotFoundError(f"PySpice is not installed ({exc}): pip install PySpice") from exc
        self._ffi = ffi
        try:
            self._ng = NgSpiceShared.new_instance()
        except OSError as exc:
            raise SimulatorNotFoundError(f"cannot load libngspice ({exc}): {INSTALL_HINT}") from exc
        self._lib = self._ng._ngspice_shared
        self.runs = 0
        out = self.command("version -f")
        match = re.search(r"ngspice-(\S+)", out)
        self.version = _with_package(f"ngspice-{match.group(1)}" if match else
                                     f"ngspice-{self._ng.ngspice_version}")

    def command(self, command: str) -> str:
        """Send one command to ngspice and return its output."""
        self._ng.clear_output()
        self._lib.ngSpice_Command(command.encode("ascii"))
        return self._output()

    def _output(self) -> str:
        return "\n".join(self._ng._stdout + self._ng._stderr)

    def run(self, netlist: str) -> tuple[dict, str]:
        """Load ``netlist``, run its analysis and return (vectors of its plot, output)."""
        ffi = self._ffi
        lines = [ffi.new("char[]", line.encode("utf-8")) for line in netlist.splitlines() if line.strip()]
        lines += [ffi.new("char[]", b""), ffi.NULL]
        self._ng.clear_output()
        try:
            self._lib.ngSpice_Circ(ffi.new("char *[]", lines))
            load_output = self._output()
            if any(m in load_output.lower() for m in _ERROR_MARKERS):
                raise _classify_failure(load_output, "ngspice rejected the netlist", netlist, self.version)
            self._ng.clear_output()
            # Synchronous run: PySpice's background-thread callback returns no status,
            # which cffi reports on every call, so timeouts are enforced by the
            # process that owns this instance (spicecross.sim.runner).
            self._lib.ngSpice_Command(b"run")
            output = self._output()
            plot = ffi.string(self._lib.ngSpice_CurPlot()).decode()
            if plot == "const" or any(m in output.lower() for m in _RUN_ERROR_MARKERS + _CONVERGENCE_MARKERS):
                raise _classify_failure(load_output + "\n" + output, "ngspice run failed", netlist,
                                        self.version)
            return self._vectors(plot), load_output + "\n" + output
        finally:
            self._lib.ngSpice_Command(b"destroy all")
            self._lib.ngSpice_Command(b"remcirc")
            self.runs += 1

    def _vectors(self, plot: str) -> dict:
        ffi, lib = self._ffi, self._lib
        names = lib.ngSpice_AllVecs(plot.encode())
        vectors = {}
        k = 0
        while names[k] != ffi.NULL:
            name = ffi.string(names[k]).decode()
            info = lib.ngGet_Vec_Info(f"{plot}.{name}".encode())
            if info != ffi.NULL and info.v_realdata != ffi.NULL:
                length = info.v_length
                vectors[name.lower()] = np.frombuffer(ffi.buffer(info.v_realdata, 8 * length),
                                                      dtype=np.float64).copy()
            k += 1
        return vectors
