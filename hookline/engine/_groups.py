"""Groups of one error: trio wraps even a single error in an ExceptionGroup (nested
once per nursery it crosses), but what a user catches or a log line shows should be
that error itself."""

from __future__ import annotations

from typing import overload


@overload
def lone_error(exc: Exception) -> Exception: ...
@overload
def lone_error(exc: BaseException) -> BaseException: ...
def lone_error(exc: BaseException) -> BaseException:
    """The one error inside (nested) groups of one, else ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def describe(exc: BaseException) -> str:
    """``"Type: message"`` of the error inside groups of one (for logs and statistics)."""
    error = lone_error(exc)
    return f"{type(error).__name__}: {error}"
