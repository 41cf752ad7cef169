"""The kit's one error family: every deliberate error is a :class:`QpiError` (and the built-in error
it stands for), its message naming the file, argument or setting, the value and what was expected."""

from __future__ import annotations

__all__ = ["QpiError", "InputError", "DatasetError"]


class QpiError(Exception):
    """An error the kit raised on purpose, with a message that names the problem."""


class InputError(QpiError, ValueError):
    """An argument of the kit's API that it cannot use; the message names it (see :mod:`qpi_utils.validate`)."""


class DatasetError(QpiError, ValueError):
    """A dataset file, array or request is not valid; the message names what and where."""
