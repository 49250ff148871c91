"""``jobgov usage``: totals, JSON shape, budget outcomes and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jobgov.cli import app
from tests.helpers import CAPTURES

CAPTURE_FILES = sorted(CAPTURES.glob("*.event.jsonl"))
PRICING = """\
pricing:
  fake/fake-model: {input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}
"""
runner = CliRunner()


def _final_session(path: Path) -> dict[str, Any]:
    infos: list[dict[str, Any]] = [
        e["properties"]["info"]
        for e in map(json.loads, path.read_text(encoding="utf-8").splitlines())
        if e["type"] == "session.updated"
    ]
    return infos[-1]


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _usage_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["usage", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_captures_are_present() -> None:
    assert CAPTURE_FILES, f"no *.event.jsonl captures in {CAPTURES}"


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: p.name.removesuffix(".event.jsonl"))
def test_json_totals_equal_opencode_session_totals(path: Path, tmp_path: Path) -> None:
    report = _usage_json("--config", str(_config(tmp_path, PRICING)), str(path))
    final = _final_session(path)
    expected_tokens = {
        "input": final["tokens"]["input"],
        "output": final["tokens"]["output"],
        "reasoning": final["tokens"]["reasoning"],
        "cache_read": final["tokens"]["cache"]["read"],
        "cache_write": final["tokens"]["cache"]["write"],
    }
    expected_tokens["total"] = sum(expected_tokens.values())
    session = report["sessions"][final["id"]]
    assert session["tokens"] == expected_tokens
    assert session["cost_usd"] == final["cost"]
    assert session["agent_cost_usd"] == final["cost"]
    assert session["cost_source"] == ("override" if session["steps"] else None)
    assert "budget" not in session
    assert report["total"] == {k: session[k] for k in ("tokens", "cost_usd", "agent_cost_usd", "steps")}
    assert report["skipped"] == 0


def test_without_config_the_agent_cost_is_used() -> None:
    report = _usage_json(str(CAPTURES / "approve.event.jsonl"))
    (session,) = report["sessions"].values()
    assert session["cost_source"] == "agent"
    assert session["cost_usd"] == 0.015
    assert session["steps"] == 4


def test_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    lines = (CAPTURES / "text_sync.event.jsonl").read_text(encoding="utf-8").splitlines()
    bad_step = {
        "type": "message.part.updated",
        "properties": {"part": {"id": "prt_bad", "type": "step-finish", "messageID": "m", "sessionID": "s"}},
    }
    lines[2:2] = ["{broken", "42", json.dumps({"id": "e", "type": "new.kind", "properties": {}}), json.dumps(bad_step)]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines), encoding="utf-8")
    result = runner.invoke(app, ["usage", str(events), "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["skipped"] == 3
    assert report["total"]["tokens"]["total"] == 1050
    assert "line 3: invalid JSON" in result.stderr
    assert "line 4: expected a JSON object" in result.stderr
    assert "1 unreadable step-finish event" in result.stderr


def test_budget_outcomes_per_session_and_plan(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        PRICING
        + "budget:\n"
        "  job: {usd: 0.01, on_exceed: kill}\n"
        "  plan: {tokens: 4200, warn_at: [0.5]}\n"
        "  jobs:\n"
        "    roomy: {usd: 1}\n",
    )
    report = _usage_json("--config", str(config), str(CAPTURES / "approve.event.jsonl"))
    (session,) = report["sessions"].values()
    budget = session["budget"]
    assert budget["limit"]["usd"] == 0.01
    assert budget["action"] == "kill"
    assert budget["exceeded_at_step"] == 3  # 3 x 0.00375 = 0.01125 >= 0.01.
    assert [(e["step"], e["action"]) for e in budget["events"]] == [(2, "notify"), (3, "kill")]
    assert budget["events"][0]["warnings"] == [
        {"dimension": "usd", "threshold": 0.5},
        {"dimension": "usd", "threshold": 0.75},
    ]
    assert budget["events"][1]["warnings"] == [{"dimension": "usd", "threshold": 0.9}]
    plan = report["total"]["budget"]
    assert (plan["action"], plan["exceeded_at_step"]) == ("pause", 4)  # 4200 tokens reached exactly.

    roomy = _usage_json("--config", str(config), "--job", "roomy", str(CAPTURES / "approve.event.jsonl"))
    (session,) = roomy["sessions"].values()
    assert session["budget"]["events"] == [] and session["budget"]["action"] is None


def test_sessions_without_steps_still_report_their_budget(tmp_path: Path) -> None:
    config = _config(tmp_path, "budget:\n  job: {usd: 1}\n")
    report = _usage_json("--config", str(config), str(CAPTURES / "llm_error_400.event.jsonl"))
    (session,) = report["sessions"].values()
    assert session["steps"] == 0 and session["cost_source"] is None
    assert session["budget"]["limit"]["usd"] == 1 and session["budget"]["events"] == []


def test_table_output(tmp_path: Path) -> None:
    config = _config(tmp_path, PRICING + "budget:\n  job: {usd: 0.01}\n")
    result = runner.invoke(app, ["usage", "-c", str(config), str(CAPTURES / "approve.event.jsonl")])
    assert result.exit_code == 0, result.stderr
    session = _final_session(CAPTURES / "approve.event.jsonl")["id"]
    assert session in result.stdout
    assert "total" in result.stdout and "4,200" in result.stdout and "$0.015000" in result.stdout
    assert "limit reached -> pause" in result.stdout


def test_stdin_is_read_with_a_dash() -> None:
    text = (CAPTURES / "text_sync.event.jsonl").read_text(encoding="utf-8")
    result = runner.invoke(app, ["usage", "-", "--json"], input=text)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["total"]["steps"] == 1


def test_missing_events_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["usage", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "nope.jsonl: no such file" in result.stderr
    assert result.stdout == ""


def test_missing_config_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["usage", "-c", str(tmp_path / "nope.yaml"), str(CAPTURE_FILES[0])])
    assert result.exit_code == 2
    assert "nope.yaml: no such file" in result.stderr


def test_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = _config(tmp_path, "budget:\n  job: {usd: 0.01, warn_at: [1.2]}\n")
    result = runner.invoke(app, ["usage", "-c", str(config), str(CAPTURE_FILES[0])])
    assert result.exit_code == 2
    assert "plan.yaml:2: budget.job.warn_at: warning threshold 1.2 must be between 0 and 1" in result.stderr
