"""jobgov: governance and cost control for AI coding-agent jobs, as a Temporal plugin."""

from __future__ import annotations

__version__ = "0.1.0"
