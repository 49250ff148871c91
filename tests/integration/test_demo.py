"""`make demo` keeps working: the demo command, end to end, as a user runs it (fake agent for speed;
the real-opencode path is what tests/e2e covers)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from jobgov.devserver import free_port

pytestmark = pytest.mark.temporal


def test_demo_runs_a_plan_of_three_jobs(tmp_path: Path) -> None:
    # Ports of its own: another test's (or a user's) server may hold 7233.
    run = subprocess.run(
        [sys.executable, "-c", "from jobgov.cli import main; main()", "demo", "--fake-agent", "--until-settled",
         "--port", str(free_port()), "--ui-port", str(free_port())],
        capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    plan = re.search(r"job tidy started in plan (demo-[0-9a-f]{6})", out)
    assert plan is not None, out
    assert "tidy      auto-approve  bash 'ls -la' by policy" in out
    assert "tidy      is completed · 3 model calls" in out
    assert "release   is awaiting-approval" in out
    assert "refactor  is paused" in out and "refactor: paused (job budget exceeded (usd))" in out
    # How to act, as typed: the approve and resume commands name this run's plan.
    [ask] = re.findall(r"jobgov approve release (per_\w+) --plan " + plan[1], out)
    assert f"--workflow-id jobgov/{plan[1]}/release --name approve --input '{{\"request_id\": \"{ask}\"}}'" in out
    assert f"jobgov resume refactor --plan {plan[1]} --add-usd 0.05" in out
    assert "TEMPORAL_ADDRESS=127.0.0.1:" in out  # not on 7233 here: the line to use is printed
    assert "JobGovState%3D%22awaiting-approval%22" in out
