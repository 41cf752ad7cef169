"""The kit's one error family.

Every error the kit raises on purpose is a :class:`QpiError`, and its message names what is at
fault: the file, the argument, the header field or the setting, with the value found and what was
expected. Each module's error (``ProfileError``, ``DatasetError``, ``CheckpointError``, ...)
subclasses it and the built-in error it stands for (``ValueError``, ``FileNotFoundError``, ...), so
``except QpiError`` catches every one of them and older ``except ValueError`` code still works.
"""

from __future__ import annotations

__all__ = ["QpiError", "InputError", "DatasetError"]


class QpiError(Exception):
    """An error the kit raised on purpose, with a message that names the problem."""


class InputError(QpiError, ValueError):
    """An argument of the kit's API that it cannot use; the message names it (see :mod:`qpi_utils.validate`)."""


class DatasetError(QpiError, ValueError):
    """A dataset file, array or request is not valid; the message names what and where."""
