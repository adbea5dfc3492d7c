"""Safety check for netlists written by other people.

A netlist is more than a circuit. ngspice 39 runs the commands of
``.control`` blocks, including ``shell``, which starts any program. It runs
lines that start with ``*#`` as commands, and a whole file as a script when
its title starts with ``*ng_script``. It reads any file that an ``.include``
or ``.lib`` card names. All of this also happens after ``.end`` and inside
included files (each checked with ``ngspice -b``). :func:`check_safety`
rejects such netlists unless the caller opts in.

Included files are resolved as ngspice resolves them: a relative path against
the folder of the file that contains the card, after ``~`` expansion. The
resolved path, with symlinks and ``..`` resolved, must lie inside the netlist
folder or one of the allowed folders.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spicecross.errors import NetlistError, UnsafeNetlistError
from spicecross.netlist.parse import Netlist, parse_netlist

#: Opt-in for running an unsafe netlist, as messages name it.
OPT_IN = ("pass --allow-unsafe on the command line or allow_unsafe=True in Python, "
          "and only for a netlist you trust")

# Parameters of .model cards (and elements) that name a file that ngspice
# reads, such as the XSPICE filesource model.
_FILE_PARAMS = frozenset({"file", "filename"})


@dataclass(frozen=True)
class SafetyIssue:
    """One card that untrusted input may not contain.

    ``path`` is the file that contains the card, ``None`` for netlist text
    without a path. ``include_line`` is the line of the ``.include`` or
    ``.lib`` card of the checked netlist through which an included file was
    reached, ``None`` for cards of the netlist itself.
    """

    code: str
    line: int
    path: str | None
    message: str
    include_line: int | None = None

    def format(self) -> str:
        """Return the issue as ``FILE:LINE: message``."""
        return f"{self.path or '<netlist text>'}:{self.line}: {self.message}"

    def to_dict(self) -> dict:
        """Return the issue as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class IncludedFile:
    """A file reached through ``.include``/``.lib`` that the scan read and parsed."""

    path: Path
    netlist: Netlist
    include_line: int


@dataclass(frozen=True)
class SafetyScan:
    """Result of :func:`scan_netlist`: the issues found and the files read."""

    issues: tuple[SafetyIssue, ...]
    included: tuple[IncludedFile, ...] = field(default=())

    @property
    def safe(self) -> bool:
        """True when no issue was found."""
        return not self.issues


def check_safety(netlist: Netlist, *, netlist_dir: str | Path,
                 allowed_dirs: Iterable[str | Path] = (),
                 allow_unsafe: bool = False) -> list[SafetyIssue]:
    """Raise UnsafeNetlistError unless the netlist is safe to run or the caller opted in.

    Rejected: ``.control`` blocks, ``shell`` commands, ``*#`` command lines,
    ``*ng_script`` files, and ``.include``/``.lib`` files or model ``file=``
    parameters that resolve outside ``netlist_dir`` and ``allowed_dirs`` or
    do not exist. Allowed includes are read and checked the same way,
    recursively. Relative paths resolve against ``netlist_dir`` for the
    netlist itself.

    Returns the issues found, which is an empty list for a safe netlist and
    may be non-empty only with ``allow_unsafe=True``.

    Raises:
        UnsafeNetlistError: listing every issue with its file and line, and the
            opt-in (``--allow-unsafe`` or ``allow_unsafe=True``).
    """
    scan = scan_netlist(netlist, netlist_dir=netlist_dir, allowed_dirs=allowed_dirs)
    if scan.issues and not allow_unsafe:
        raise UnsafeNetlistError(format_rejection(netlist, scan.issues))
    return list(scan.issues)


def format_rejection(netlist: Netlist, issues: Iterable[SafetyIssue]) -> str:
    """Return the message of an UnsafeNetlistError for these issues."""
    label = str(netlist.path) if netlist.path is not None else "<netlist text>"
    lines = [f"netlist {label} was rejected: it can run commands or read files outside "
             "its folder."]
    lines += [f"  {issue.format()}" for issue in issues]
    lines.append(f"To run it anyway, {OPT_IN}.")
    return "\n".join(lines)


def scan_netlist(netlist: Netlist, *, netlist_dir: str | Path,
                 allowed_dirs: Iterable[str | Path] = (),
                 read_outside: bool = False) -> SafetyScan:
    """Find the unsafe cards of a netlist and its included files, without raising.

    With ``read_outside``, included files outside the allowed folders are
    still read and scanned (and reported), which lets an inspection of a
    trusted netlist see their subcircuits.
    """
    base = Path(netlist_dir).expanduser().resolve()
    roots = [base] + [Path(folder).expanduser().resolve() for folder in allowed_dirs]
    scanner = _Scanner(roots=roots, read_outside=read_outside)
    if netlist.path is not None:
        scanner.visited.add(Path(netlist.path).expanduser().resolve())
    label = str(netlist.path) if netlist.path is not None else None
    scanner.scan(netlist, label, base, include_line=None)
    return SafetyScan(tuple(scanner.issues), tuple(scanner.included))


def _resolve(raw: str, base_dir: Path) -> Path:
    path = Path(os.path.expanduser(raw))
    if not path.is_absolute():
        path = base_dir / path
    return path.resolve()


@dataclass
class _Scanner:
    roots: list[Path]
    read_outside: bool
    issues: list[SafetyIssue] = field(default_factory=list)
    included: list[IncludedFile] = field(default_factory=list)
    visited: set[Path] = field(default_factory=set)

    def is_allowed(self, path: Path) -> bool:
        return any(path == root or path.is_relative_to(root) for root in self.roots)

    def add(self, code: str, line: int, label: str | None, message: str,
            include_line: int | None) -> None:
        self.issues.append(SafetyIssue(code, line, label, message, include_line))

    def scan(self, netlist: Netlist, label: str | None, base_dir: Path,
             include_line: int | None) -> None:
        self.scan_commands(netlist, label, include_line)
        self.scan_files(netlist, label, base_dir, include_line)

    def scan_commands(self, netlist: Netlist, label: str | None,
                      include_line: int | None) -> None:
        if netlist.is_script:
            self.add("script-file", 1, label,
                     "the title starts with '*ng_script', so ngspice runs the whole file "
                     "as a script of commands", include_line)
        for block in netlist.controls:
            if not netlist.is_script:
                self.add("control-block", block.line, label,
                         f".control block (lines {block.line}-{block.end_line}) runs ngspice "
                         "commands, which can write files and start programs", include_line)
            for control_line in block.lines:
                if _is_shell(control_line.command):
                    self.add("shell-command", control_line.line, label,
                             f"'shell' starts a program: {control_line.command!r}",
                             include_line)
        for command in netlist.hash_commands:
            kind = "a program through 'shell'" if _is_shell(command.command) else "a command"
            self.add("hash-command", command.line, label,
                     f"a line starting with '*#' is not a comment: ngspice runs it as {kind}: "
                     f"{command.command!r}", include_line)
        for card in netlist.shell_cards:
            self.add("shell-command", card.line, label,
                     f"'shell' card outside .control: {card.text!r}", include_line)

    def scan_files(self, netlist: Netlist, label: str | None, base_dir: Path,
                   include_line: int | None) -> None:
        for model in netlist.models:
            self.check_file_params(model.params, f"model {model.name}", model.line,
                                   label, base_dir, include_line)
        for element in netlist.all_elements():
            self.check_file_params(element.params, f"element {element.name}", element.line,
                                   label, base_dir, include_line)

        for include in netlist.includes:
            card = f".{include.kind} {include.path}"
            resolved = _resolve(include.path, base_dir)
            via = include_line if include_line is not None else include.line
            allowed = self.is_allowed(resolved)
            if not allowed:
                self.add("include-outside", include.line, label,
                         f"{card!r} reads {resolved}, which is outside the netlist folder "
                         f"and the allowed folders ({self.format_roots()})", include_line)
            if not resolved.is_file():
                self.add("include-missing", include.line, label,
                         f"{card!r}: file {resolved} not found; ngspice would then search "
                         "the working directory and its sourcepath, which this check "
                         "cannot follow", include_line)
                continue
            if resolved in self.visited or not (allowed or self.read_outside):
                continue
            self.visited.add(resolved)
            self.scan_included(resolved, label, include.line, via)

    def scan_included(self, path: Path, label: str | None, line: int, via: int) -> None:
        try:
            text = path.read_text(errors="replace")
            included = parse_netlist(text, path=path, title_line=False)
        except (OSError, NetlistError) as error:
            self.add("include-unreadable", line, label,
                     f"included file {path} could not be checked: {error}", via)
            return
        self.included.append(IncludedFile(path, included, via))
        self.scan(included, str(path), path.parent, include_line=via)

    def check_file_params(self, params: dict[str, str], owner: str, line: int,
                          label: str | None, base_dir: Path,
                          include_line: int | None) -> None:
        if not params or not any(key in params for key in _FILE_PARAMS):
            return
        for key in _FILE_PARAMS & params.keys():
            raw = params[key].strip("'\"")
            resolved = _resolve(raw, base_dir)
            if not self.is_allowed(resolved):
                # NOTE: XSPICE resolves some file= parameters against the working
                # directory; resolving against the netlist folder may differ.
                self.add("file-outside", line, label,
                         f"{owner} reads file {raw!r} ({resolved}), which is outside the "
                         f"netlist folder and the allowed folders ({self.format_roots()})",
                         include_line)

    def format_roots(self) -> str:
        return ", ".join(str(root) for root in self.roots)


def _is_shell(command: str) -> bool:
    words = command.split(None, 1)
    return bool(words) and words[0].lower() == "shell"
