"""`make demo` keeps working: the demo command, end to end, as a user runs it (fake agent for speed;
the real-opencode path is what tests/e2e covers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.temporal


def test_demo_runs_a_governed_job(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", "from jobgov.cli import main; main()", "demo", "--fake-agent", "--db",
         str(tmp_path / "demo.db")],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "auto-approve  bash 'ls -la' by policy" in out
    assert "approve       bash 'ls /' by demo" in out
    assert "deny          bash 'git push origin main' by policy: rule matched" in out
    assert ": completed · 5 model calls" in out
