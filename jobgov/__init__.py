"""jobgov: governance and cost control for AI coding-agent jobs, as a Temporal plugin.

The public surface is :class:`JobGovPlugin` (add it to a Temporal client and worker)
and :class:`JobGovClient` (start, inspect and decide jobs). Both are imported on
first use, so that importing a light module (``jobgov.domain``, the workflows)
does not load the HTTP client, the shell parser or the price tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.10.0"

if TYPE_CHECKING:
    from jobgov.client import JobGovClient
    from jobgov.temporal.plugin import JobGovPlugin

__all__ = ["JobGovClient", "JobGovPlugin", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "JobGovPlugin":
        from jobgov.temporal.plugin import JobGovPlugin

        return JobGovPlugin
    if name == "JobGovClient":
        from jobgov.client import JobGovClient

        return JobGovClient
    raise AttributeError(f"module 'jobgov' has no attribute {name!r}")
