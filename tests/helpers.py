"""Paths and small helpers shared by the test suites."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _captures() -> Path:
    # The captures live in the steering repo's shared/ folder, a sibling of this checkout
    # (locally and in CI). JOBGOV_SHARED overrides for other layouts.
    import os

    shared = Path(os.environ.get("JOBGOV_SHARED", ROOT.parent / "shared"))
    path = shared / "opencode" / "captures"
    if not path.is_dir():
        raise RuntimeError(f"opencode captures not found at {path}; set JOBGOV_SHARED to the shared/ folder")
    return path


CAPTURES = _captures()
