"""Checks of the keys of configuration tables, shared by every TOML reader.

A misspelt key must not be ignored, because the run would go on with a default
the user meant to change. Every reader reports it the same way: where, which
table, the closest valid key and all valid keys.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(data: dict, valid: Iterable[str], *, where: str, table: str,
               error: type[Exception] = ValueError) -> None:
    """Raise ``error`` for the first key of ``data`` that is not in ``valid``.

    Args:
        data: one table of a configuration.
        valid: the keys the table may contain.
        where: the file (or other source) the table came from.
        table: the table's name, as written in the file (``tiles``, ``crossbar.device``).
        error: the exception class to raise.
    """
    valid = sorted(valid)
    for key in data:
        if key not in valid:
            name = f"[{table}] {key}" if table else key
            raise error(f"{where}: unknown key {name!r}{did_you_mean(key, valid)}; "
                        f"valid keys are {', '.join(valid)}")
