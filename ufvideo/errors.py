"""The user-error family: a `UFVideoError` is a problem with inputs, configuration or storage that the user fixes.

The CLI prints such errors as one line and exits 2 (no traceback: the message already names the file, line, record
and field); every other exception is a bug or an environment failure and keeps its traceback (exit 1).
"""

from __future__ import annotations


class UFVideoError(Exception):
    """Base of every user-facing error (config, data, registry, video, checkpoint, storage). Subclasses do not derive
    from ValueError: a ValueError is a bug and keeps its traceback."""


class DataError(UFVideoError):
    """An input data file (JSON, annotation, manifest) that cannot be used; the message names the file and line."""
