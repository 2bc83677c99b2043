"""The user-error family: a `UFVideoError` is a problem with inputs, configuration or storage that the user fixes.

The CLI prints such errors as one line and exits 2 (no traceback: the message already names the file, line, record
and field); every other exception is a bug or an environment failure and keeps its traceback (exit 1).
"""

from __future__ import annotations


class UFVideoError(Exception):
    """Base of every user-facing error; subclasses also derive from the builtin they refine (ValueError, OSError)."""
