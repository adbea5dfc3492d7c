"""Loading of a matrix of numbers from a CSV file, with errors that name the line and column.

The format is the one ``numpy.loadtxt(path, delimiter=",", ndmin=2)`` reads: one matrix row
per line, numbers separated by commas, no header line, blank lines and ``#`` comments ignored.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np


def load_csv_matrix(path: str | Path) -> np.ndarray:
    """Load a 2-D float array from a CSV file (a single row or column gives shape (1, n) or (n, 1)).

    Raises:
        ValueError: the file is empty, a field is not a number, or the lines have different
            counts of values. The message names the file, the 1-based line number of the file
            and the 1-based column, and states the fix.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns, rather than raises, on an empty file
            return np.loadtxt(path, delimiter=",", ndmin=2)
    except (ValueError, UserWarning) as exc:
        numpy_error = exc
    # numpy counts rows of data rather than lines of the file, from 0 or from 1 depending on the
    # error, so the file is read again here to find the line and column of the first problem.
    problem = _find_csv_problem(path)
    if problem is None:
        # NOTE: reached only if numpy rejects a file that _find_csv_problem accepts.
        reason = re.sub(r";? ?use `usecols`.*", "", str(numpy_error)).strip()
        problem = (f"numpy.loadtxt could not read it ({reason})",
                   "Write one matrix row per line, numbers separated by commas, the same count on "
                   "every line, and no header line.")
    found, fix = problem
    raise ValueError(f"{path} is not a valid CSV matrix because {found}. {fix}") from None


def _find_csv_problem(path: Path) -> tuple[str, str] | None:
    """Return (what was found, how to fix it) for the first invalid line, or None.

    Lines are counted as numpy splits them, at ``\n``, ``\r\n`` or a lone ``\r``.
    """
    first_line = None
    expected_count = 0
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            data = line.split("#", 1)[0]
            if not data.strip():
                continue
            fields = data.rstrip("\r\n").split(",")
            for column, field in enumerate(fields, start=1):
                if _is_number(field):
                    continue
                where = f"line {number}, column {column}"
                if not field.strip():
                    return (f"{where} is empty",
                            "Write a number there, or delete the extra comma.")
                if first_line is None:
                    return (f"{where} is {field.strip()!r}, which is not a number",
                            "Replace it with a number, or delete the line if it is a header line.")
                return (f"{where} is {field.strip()!r}, which is not a number",
                        "Replace it with a number.")
            if first_line is None:
                first_line, expected_count = number, len(fields)
            elif len(fields) != expected_count:
                if len(fields) < expected_count:
                    consequence = f"line {number} has no column {len(fields) + 1}"
                else:
                    consequence = f"line {number} has values beyond column {expected_count}"
                return (f"line {number} has {_count(len(fields))} but line {first_line}, the first "
                        f"line of numbers, has {_count(expected_count)}, so {consequence}",
                        "Give every line the same count of comma-separated numbers, one per column "
                        "of the matrix.")
    if first_line is None:
        return ("it contains no numbers",
                "Write one matrix row per line, numbers separated by commas.")
    return None


def _is_number(field: str) -> bool:
    """Return whether numpy.loadtxt reads ``field`` as a float.

    Python's float() also accepts underscores and non-ASCII digits, which numpy rejects.
    """
    text = field.strip()
    if not text.isascii() or "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _count(values: int) -> str:
    return f"{values} value" if values == 1 else f"{values} values"
