"""The permission policy: normalise an ask (I/O), then decide it (pure).

``normalize`` resolves paths on the agent's machine and parses shell commands;
it runs in an activity (or the CLI). ``evaluate`` is a pure function of the
effective policy and the normalised ask; the workflow calls it to re-check
every decision.
"""

from __future__ import annotations

from jobgov.policy.evaluate import evaluate
from jobgov.policy.normalize import normalize

__all__ = ["evaluate", "normalize"]
