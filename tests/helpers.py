"""Paths and small helpers shared by the test suites."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Real streams captured from ``opencode serve`` 1.18.33, its OpenAPI document and the
#: protocol notes; kept inside the repository so a fresh clone tests itself.
OPENCODE_FIXTURES = ROOT / "tests" / "fixtures" / "opencode"
CAPTURES = OPENCODE_FIXTURES / "captures"
