"""The client's errors: what a caller (and the CLI's exit status) can tell apart."""

from __future__ import annotations


class JobGovError(Exception):
    """A runtime failure (the CLI exits 1): the message says what happened and what to do."""


class UnreachableError(JobGovError):
    """Temporal does not answer at the address."""


class NotFoundError(JobGovError):
    """No job (or plan) of that name."""


class AlreadyRunningError(JobGovError):
    """A job of that name is already running in the plan."""


class RejectedError(JobGovError):
    """The workflow rejected a decision; the message is the validator's."""


class NoAnswerError(JobGovError):
    """The workflow did not answer in time (usually: no worker polls its task queue)."""


class InputError(ValueError):
    """Bad input from the caller (the CLI exits 2)."""


def connect_error_reason(exc: BaseException) -> str:
    """A short reason from the Temporal core's long connection errors."""
    text = str(exc)
    for needle, short in (("Connection refused", "connection refused"), ("dns error", "unknown host"),
                          ("timed out", "timed out"), ("Unimplemented", "not a Temporal server")):
        if needle in text:
            return short
    if isinstance(exc, TimeoutError):
        return "timed out"
    return text.splitlines()[0][:200] if text else type(exc).__name__

