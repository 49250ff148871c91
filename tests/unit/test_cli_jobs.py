"""The job commands of the CLI without Temporal: arguments, errors, exit statuses and output shapes.

Runtime failures exit 1, bad input exits 2 (checked before connecting, so it
fails the same way when Temporal is down). Output is checked against a stand-in
:class:`~jobgov.client.JobGovClient` that returns canned models.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jobgov.cli import app
from jobgov.cli import jobs as cli_jobs
from jobgov.client import NotFoundError, RejectedError
from jobgov.client.overview import JobOverview, JobsOverview, PlanTotals
from jobgov.domain.asks import Category
from jobgov.temporal.payloads import JobStatus, PlanStatus
from jobgov.temporal.state import DecisionRecord, JobState, PendingAsk

runner = CliRunner()
UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1: connection refused at once
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


# ---------------------------------------------------------------------------- Temporal unreachable


@pytest.mark.parametrize("args", [
    ["job", "status", "j1"],
    ["job", "start", "--agent", "http://127.0.0.1:4096", "--worktree", "/tmp", "--plan", "p", "--job", "j",
     "--prompt", "hi"],
    ["jobs"],
    ["approve", "j1", "per_1"],
    ["deny", "j1", "per_1", "--reason", "no"],
    ["resume", "j1", "--add-usd", "1"],
    ["kill", "j1"],
    ["plan", "status", "p"],
    ["plan", "resume", "p"],
])
def test_unreachable_temporal_exits_1_quickly_with_a_clear_message(args: list[str]) -> None:
    started = time.monotonic()
    result = invoke(*args, "--address", UNREACHABLE)
    assert result.exit_code == 1, result.output
    assert f"Temporal is not reachable at {UNREACHABLE}" in result.stderr
    assert "jobgov dev" in result.stderr
    assert time.monotonic() - started < 5


def test_the_address_comes_from_temporals_client_config(tmp_path: Path) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text(f'[profile.ops]\naddress = "{UNREACHABLE}"\n')
    result = invoke("jobs", env={"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "ops"})
    assert result.exit_code == 1 and f"Temporal is not reachable at {UNREACHABLE}" in result.stderr


def test_an_unreadable_client_config_exits_2_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text("[profile.default\n")
    for args in (["jobs"], ["worker"]):
        result = invoke(*args, env={"TEMPORAL_CONFIG_FILE": str(config)})
        assert result.exit_code == 2, (args, result.output)
        assert f"Temporal client config {config} (profile default)" in result.stderr


def test_worker_with_fewer_than_two_workflow_tasks_exits_2_naming_the_option() -> None:
    for args in (["--workflow-tasks", "1"], []):
        env = {} if args else {"JOBGOV_WORKFLOW_TASKS": "0"}
        result = invoke("worker", "--address", UNREACHABLE, *args, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert "--workflow-tasks" in result.stderr and "greater than or equal to 2" in result.stderr


def test_worker_with_a_gc_threshold_below_0_exits_2_naming_the_option() -> None:
    for args, env in ((["--gc-threshold", "-1"], {}), ([], {"JOBGOV_GC_THRESHOLD": "-2"})):
        result = invoke("worker", "--address", UNREACHABLE, *args, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert "--gc-threshold" in result.stderr and "greater than or equal to 0" in result.stderr


def test_address_comes_from_the_environment() -> None:
    result = invoke("jobs", env={"TEMPORAL_ADDRESS": UNREACHABLE})
    assert result.exit_code == 1
    assert f"not reachable at {UNREACHABLE}" in result.stderr


def test_unknown_host_is_named() -> None:
    result = invoke("jobs", "--address", "no-such-host.invalid:7233")
    assert result.exit_code == 1
    assert "no-such-host.invalid:7233 (unknown host)" in result.stderr


# ---------------------------------------------------------------------------- bad input: exit 2 before connecting


def _start(*extra: str) -> Any:
    return invoke("job", "start", "--agent", "http://127.0.0.1:4096", "--worktree", "/tmp", "--plan", "p",
                  "--job", "j", "--address", UNREACHABLE, *extra)


def test_start_with_a_bad_config_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "plan.yaml"
    config.write_text("permissions:\n  shell_command: maybe\n", encoding="utf-8")
    result = _start("--prompt", "hi", "--config", str(config))
    assert result.exit_code == 2
    assert f"{config}:2: permissions.shell_command: unknown action 'maybe'" in result.stderr


def test_start_with_a_missing_config_exits_2(tmp_path: Path) -> None:
    result = _start("--prompt", "hi", "--config", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert "missing.yaml: no such file" in result.stderr


def test_start_needs_a_session_or_a_prompt() -> None:
    result = _start()
    assert result.exit_code == 2
    assert "give a session id (--session) or a prompt (--prompt)" in result.stderr


def test_start_needs_an_http_agent_url() -> None:
    result = invoke("job", "start", "--agent", "localhost:4096", "--worktree", "/tmp", "--plan", "p", "--job", "j",
                    "--prompt", "hi", "--address", UNREACHABLE)
    assert result.exit_code == 2
    assert "must be an http:// or https:// URL" in result.stderr


def test_start_needs_every_required_option() -> None:
    result = invoke("job", "start", "--plan", "p", "--job", "j", "--prompt", "hi")
    assert result.exit_code == 2
    assert "--agent" in result.output + result.stderr


@pytest.mark.parametrize("args", [
    ["job", "status", "bad name"],
    ["approve", "j1", "per_1", "--plan", "it's"],
    ["kill", "-x"],
    ["plan", "status", "a b"],
])
def test_invalid_names_exit_2(args: list[str]) -> None:
    result = invoke(*args, "--address", UNREACHABLE)
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize("args", [
    ["resume", "j1", "--add-usd", "0"],
    ["resume", "j1", "--add-tokens", "-5"],
    ["plan", "resume", "p", "--add-usd", "-1"],
])
def test_budget_raises_must_be_positive(args: list[str]) -> None:
    result = invoke(*args, "--address", UNREACHABLE)
    assert result.exit_code == 2
    assert "must be greater than 0" in result.stderr


def test_the_cli_never_imports_worker_side_modules() -> None:
    code = (
        "import sys, jobgov.cli\n"
        "bad = [m for m in sys.modules if m.startswith(('jobgov.run', 'jobgov.temporal.plugin', 'jobgov.temporal.activities',"
        " 'jobgov.temporal.workflows', 'temporalio.worker'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------- output against a stand-in client


def _status(state: JobState = JobState.AWAITING_APPROVAL) -> JobStatus:
    return JobStatus(
        plan="p", job="j1", workflow_id="jobgov/p/j1", state=state, session_id="ses_1",
        agent_url="http://127.0.0.1:4096", worktree="/w",
        tokens={"input": 10, "output": 5, "reasoning": 1, "cache_read": 2, "cache_write": 3, "total": 21},
        cost_usd=0.25, agent_cost_usd=0.24, steps=3, cost_sources=["models.dev"], budget=None,
        pending=[PendingAsk(id="per_2", permission="bash", patterns=["npm install [x]"],
                             category=Category.INSTALL_PACKAGES, reason="install_packages: npm install", asked_at=NOW)],
        decisions=[_decision()], warnings=[],
    )


def _decision(action: str = "approve") -> DecisionRecord:
    return DecisionRecord(request_id="per_1", permission="bash", patterns=["ls"], action=action,  # type: ignore[arg-type]
                          reply="once", category=Category.SHELL_COMMAND, reason="why", actor="ana", at=NOW)


class StubClient:
    """Answers like JobGovClient; records calls."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            StubClient.calls.append((name, args, kwargs))
            return self.answers[name](*args, **kwargs)
        return call

    answers: dict[str, Any] = {
        "job_status": lambda job, plan=None: _status(),
        "approve": lambda *a, **k: _decision("approve-always" if k.get("always") else "approve"),
        "deny": lambda job, request_id, **k: (_ for _ in ()).throw(RejectedError(f"no pending ask {request_id} in job {job}")),
        "kill": lambda *a, **k: _status(JobState.KILLED),
        "start_job": lambda *a, **k: "jobgov/p/j",
        "overview": lambda plan=None: JobsOverview(
            jobs=[JobOverview(plan="p", job="j1", workflow_id="jobgov/p/j1", state="running", cost_usd=0.25,
                              tokens=21, pending=1, steps=3)],
            plans=[PlanTotals(plan="p", jobs=1, cost_usd=0.25, tokens=21, pending=1, paused=False)]),
        "plan_status": lambda plan: (_ for _ in ()).throw(NotFoundError(f"no plan named {plan}")),
        "plan_resume": lambda plan, **k: PlanStatus(plan=plan, workflow_id="jobgov/p", paused=False, jobs=[],
                                                    cost_usd=0, tokens=0, budget=None),
    }


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> type[StubClient]:
    StubClient.calls = []

    async def connect(address: str | None = None, namespace: str = "default") -> StubClient:
        return StubClient()

    monkeypatch.setattr(cli_jobs.JobGovClient, "connect", connect)
    return StubClient


def test_job_status_json_has_the_documented_shape(stub: type[StubClient]) -> None:
    result = invoke("job", "status", "j1", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["state"] == "awaiting-approval"
    assert set(data["tokens"]) == {"input", "output", "reasoning", "cache_read", "cache_write", "total"}
    assert data["cost_usd"] == 0.25 and data["budget"] is None
    assert {"id", "permission", "patterns", "category", "reason"} <= set(data["pending"][0])
    assert {"request_id", "action", "category", "reason", "rule", "actor", "at"} <= set(data["decisions"][0])
    assert stub.calls == [("job_status", ("j1", None), {})]


def test_job_status_for_people_shows_pending_asks_verbatim(stub: type[StubClient]) -> None:
    result = invoke("job", "status", "j1", "--plan", "p")
    assert result.exit_code == 0, result.stderr
    assert "awaiting-approval" in result.stdout
    assert "npm install [x]" in result.stdout  # not eaten as rich markup
    assert "jobgov approve j1 ID" in result.stdout


def test_job_status_for_people_says_why_a_job_is_queued(stub: type[StubClient], monkeypatch: pytest.MonkeyPatch) -> None:
    queued = _status(JobState.QUEUED).model_copy(update={"pending": [], "queued": "no worker has taken its stream"})
    monkeypatch.setitem(StubClient.answers, "job_status", lambda job, plan=None: queued)
    result = invoke("job", "status", "j1", "--plan", "p")
    assert result.exit_code == 0, result.stderr
    assert "queued: no worker has taken its stream" in result.stdout


def test_start_makes_the_worktree_absolute(stub: type[StubClient], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("job", "start", "--agent", "http://127.0.0.1:4096", "--worktree", "wt", "--plan", "p",
                    "--job", "j", "--session", "ses_1", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["workflow_id"] == "jobgov/p/j"
    name, args, kwargs = stub.calls[0]
    assert name == "start_job" and args[3] == str(tmp_path / "wt") and kwargs["session_id"] == "ses_1"


def test_approve_passes_always_and_who(stub: type[StubClient]) -> None:
    result = invoke("approve", "j1", "per_1", "--always", "--by", "ana", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["action"] == "approve-always"
    assert stub.calls[0][2]["always"] is True and stub.calls[0][2]["by"] == "ana"


def test_a_rejected_decision_exits_1_with_the_validators_message(stub: type[StubClient]) -> None:
    result = invoke("deny", "j1", "per_9")
    assert result.exit_code == 1
    assert "jobgov: no pending ask per_9 in job j1" in result.stderr


def test_kill_reports_the_new_state(stub: type[StubClient]) -> None:
    result = invoke("kill", "j1")
    assert result.exit_code == 0, result.stderr
    assert "killed job j1 of plan p: now killed" in result.stdout


def test_jobs_lists_rows_and_plan_totals(stub: type[StubClient]) -> None:
    human = invoke("jobs")
    assert human.exit_code == 0, human.stderr
    assert "j1" in human.stdout and "1 jobs" in human.stdout
    data = json.loads(invoke("jobs", "--json").stdout)
    assert data["jobs"][0]["state"] == "running" and "status" not in data["jobs"][0]
    assert data["plans"][0] == {"plan": "p", "jobs": 1, "cost_usd": 0.25, "tokens": 21, "pending": 1,
                                "paused": False, "budget": None}


def test_unknown_plan_exits_1(stub: type[StubClient]) -> None:
    result = invoke("plan", "status", "nope")
    assert result.exit_code == 1
    assert "no plan named nope" in result.stderr


def test_plan_resume_json(stub: type[StubClient]) -> None:
    result = invoke("plan", "resume", "p", "--add-usd", "2.5", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["paused"] is False
    assert stub.calls[0][2]["add_usd"] == 2.5


@pytest.mark.parametrize("command", [["jobs"], ["job", "status"], ["approve"], ["plan", "status"], ["usage"],
                                     ["replay"], ["demo"]])
def test_flags_in_help_show_no_value_type(command: list[str]) -> None:
    """A flag takes no value: ``--json`` shows no ``<bool>`` beside it."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    flags = [line for line in result.stdout.splitlines()
             if any(f in line for f in ("--json", "--always", "--until-settled", "--fake-agent"))]
    assert flags and not any("<bool>" in line for line in flags), flags


def test_start_refuses_a_session_and_a_prompt_together() -> None:
    result = invoke("job", "start", "--agent", "http://127.0.0.1:4096", "--worktree", "/w", "--plan", "p",
                    "--job", "j", "--session", "ses_1", "--prompt", "go", "--address", UNREACHABLE)
    assert result.exit_code == 2 and "not both" in result.stderr


def test_status_says_who_ends_an_owned_job_and_why_a_job_ended(capsys: pytest.CaptureFixture[str]) -> None:
    owned = _status(JobState.RUNNING).model_copy(update={"owner": "mission-control", "pending": []})
    cli_jobs.print_status(owned)
    assert "owned by mission-control: it ends the job" in capsys.readouterr().out
    ended = owned.model_copy(update={"state": JobState.KILLED, "ended": "mission-control: Mission Control marked it stopped"})
    cli_jobs.print_status(ended)
    out = capsys.readouterr().out
    assert "ended: mission-control: Mission Control marked it stopped" in out and "owned by" not in out


def test_worker_with_an_agent_keepalive_below_a_tenth_of_a_second_exits_2_naming_the_option() -> None:
    for args, env in ((["--agent-keepalive", "0"], {}), ([], {"JOBGOV_AGENT_KEEPALIVE": "-1"})):
        result = invoke("worker", "--address", UNREACHABLE, *args, env=env)
        assert result.exit_code == 2, (args, result.output)
        assert "--agent-keepalive" in result.stderr and "greater than or equal to 0.1" in result.stderr
