"""Reading Mission Control's state: jobs, their policies, and files that cannot be read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobgov.domain.asks import Action, Category
from jobgov.domain.config import PermissionsConfig, PlanConfig
from jobgov.missioncontrol.state import find_state_dirs, read_repo, safe_name, translate_policy
from tests.helpers import MC_FIXTURES

#: Keys Mission Control's files use, so that generated objects reach the code that reads them.
_KEYS = ["version", "jobs", "id", "name", "status", "serverUrl", "remoteSessionID", "worktreePath", "planId",
         "permissionPolicy", "permissions", "fileEdit", "shellCommand", "insideWorktree", "networkAccess",
         "defaultPermissionPolicy"]
RUNNING, TUI, OLD = ("5b1f2c9e-1111-4c1e-9a77-0a1b2c3d4e01", "5b1f2c9e-2222-4c1e-9a77-0a1b2c3d4e02",
                     "5b1f2c9e-3333-4c1e-9a77-0a1b2c3d4e03")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    shutil.copytree(MC_FIXTURES / "myrepo", tmp_path / "myrepo")
    return tmp_path


def test_the_jobs_and_which_can_be_governed(root: Path) -> None:
    [state_dir] = find_state_dirs(root)
    assert find_state_dirs(state_dir) == [state_dir]  # a repository's state directory itself
    repo = read_repo(state_dir)
    assert (repo.repo, repo.complete, repo.problems, repo.warnings) == ("myrepo", True, [], [])
    jobs = {j.id: j for j in repo.jobs}
    assert [(j.name, j.status, j.serve_mode) for j in jobs.values()] == [
        ("fix-auth", "running", True), ("docs", "running", False), ("old one", "completed", True)]
    fix = jobs[RUNNING]
    assert (fix.server_url, fix.remote_session_id, fix.worktree_path, fix.plan_id) == (
        "http://127.0.0.1:14101", "ses_fixauth0001", "/src/myrepo-worktrees/fix-auth", "plan-7f3a")


def _effective(permissions: PermissionsConfig | None, category: Category, inside: bool) -> Action:
    return PlanConfig(permissions=permissions or PermissionsConfig()).policy_for("x").action_for(category, inside)


def test_a_jobs_policy_is_its_own_else_its_plans_else_the_global_one(root: Path) -> None:
    repo = read_repo(root / "myrepo" / "state")
    jobs = {j.id: j for j in repo.jobs}
    own = repo.policies.for_job(jobs[RUNNING])  # plan.json's jobs[0].permissionPolicy
    assert _effective(own, Category.SHELL_COMMAND, True) is Action.ASK_USER
    assert _effective(own, Category.MCP_TOOLS, True) is Action.ASK_USER
    plans = repo.policies.for_job(jobs[TUI])  # no policy of its own: the plan's, whole
    assert _effective(plans, Category.NETWORK_ACCESS, True) is Action.ASK_USER
    assert _effective(plans, Category.FILE_EDIT, False) is Action.ASK_USER
    outside = repo.policies.for_job(jobs[OLD])  # not of the active plan: the global policy
    assert _effective(outside, Category.NETWORK_ACCESS, True) is Action.DENY
    (root / "myrepo" / "state" / "config.json").unlink()
    assert read_repo(root / "myrepo" / "state").policies.for_job(jobs[OLD]) is None  # jobgov's defaults


def test_translation_keeps_the_closed_world() -> None:
    policy, notes = translate_policy({"permissions": {
        "fileEdit": {"insideWorktree": "auto-approve", "outsideWorktree": "allow-all"},
        "shellCommand": "deny", "networkAccess": 3, "browser": "auto-approve"}})
    assert policy.file_edit is not None and policy.file_edit.outside_worktree is Action.ASK_USER
    assert policy.shell_command is not None and policy.shell_command.inside_worktree is Action.DENY
    assert policy.network_access is not None and policy.network_access.inside_worktree is Action.ASK_USER
    assert policy.file_read is None and policy.other is None  # keys Mission Control has not: jobgov's defaults
    assert notes == ["fileEdit.outsideWorktree: 'allow-all' is not auto-approve, deny or ask-user; ask-user instead",
                     "networkAccess: 3 is not auto-approve, deny or ask-user; ask-user instead",
                     "browser: not a Mission Control policy key jobgov knows; ignored"]
    # Without the "permissions" wrapper too; and a policy that is not an object changes nothing.
    assert translate_policy({"installPackages": "auto-approve"})[0].install_packages is not None
    assert translate_policy({"permissions": []}) == (PermissionsConfig(), ["permissions: expected an object, got list"])


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(("text", "expected"), [
    ('{"version": 3, "jobs": [{"id": "a", "na', "not JSON (Unterminated string"),
    ("", "not JSON (Expecting value"),
    ('{"version": 3}', 'expected an object with a "jobs" list'),
    ('[1, 2]', 'expected an object with a "jobs" list'),
    ("\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), "not JSON"),
])
def test_a_jobs_file_that_cannot_be_read_is_a_problem_never_an_empty_list(root: Path, text: str, expected: str) -> None:
    state_dir = root / "myrepo" / "state"
    _write(state_dir / "jobs.json", text)
    repo = read_repo(state_dir)
    assert not repo.complete and repo.jobs == []  # never "every job was removed"
    [problem] = repo.problems
    assert str(state_dir / "jobs.json") in problem.where and expected in problem.message


def test_one_bad_entry_is_skipped_and_keeps_the_file_incomplete(root: Path) -> None:
    state_dir = root / "myrepo" / "state"
    data = json.loads((state_dir / "jobs.json").read_text())
    data["jobs"][1]["status"] = "paused"
    data["jobs"].append("not a job")
    data["jobs"].append({"id": "x", "status": "running"})
    data["version"] = 4
    _write(state_dir / "jobs.json", json.dumps(data))
    repo = read_repo(state_dir)
    assert not repo.complete and [j.id for j in repo.jobs] == [RUNNING, OLD]
    assert [(p.where.rsplit(": ", 1)[-1], p.message) for p in repo.problems] == [
        ("jobs[1].status", "'paused' is not one of running, completed, failed, stopped"),
        ("jobs[3]", "expected an object, got str"),
        ("jobs[4]", "no name (a text field is required)"),
    ]
    assert repo.warnings and "version 4" in repo.warnings[0]


def test_a_missing_jobs_file_and_unreadable_policies(root: Path) -> None:
    state_dir = root / "myrepo" / "state"
    (state_dir / "jobs.json").unlink()
    _write(state_dir / "plan.json", '{"id": ')
    repo = read_repo(state_dir)
    assert not repo.complete and not repo.policies_known
    assert [p.message.split(" (")[0] for p in repo.problems] == ["missing", "not JSON"]
    assert repo.problems[1].where.startswith(f"{state_dir / 'plan.json'}:1:")
    (state_dir / "plan.json").unlink()
    assert read_repo(state_dir).policies_known  # no plan is a plan nobody set


def test_names_mission_control_uses_become_jobgov_names() -> None:
    from jobgov.client import check_name

    for value, name in [("fix-auth", "fix-auth"), ("old one", "old-one"), ("a/b:c", "a-b-c"), ("///", "unnamed"),
                        ("é" * 300, "unnamed"), ("x" * 300, "x" * 200)]:
        assert safe_name(value) == name
        check_name("job", safe_name(value))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["running", "completed", "stopped", "auto-approve", "ask-user", "deny", "/wt", "j1"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), inner,
                                                                  max_size=6),
    max_leaves=30,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jobs=_json, plan=_json, config=_json)
def test_any_json_in_the_state_files_is_read_without_raising(tmp_path: Path, jobs: object, plan: object,
                                                             config: object) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(exist_ok=True)
    for name, value in (("jobs.json", jobs), ("plan.json", plan), ("config.json", config)):
        _write(state_dir / name, json.dumps(value))
    repo = read_repo(state_dir)
    for job in repo.jobs:  # what is read is what jobgov needs, typed
        assert isinstance(job.id, str) and job.status in ("running", "completed", "failed", "stopped")
        PlanConfig(permissions=repo.policies.for_job(job) or PermissionsConfig())
    assert repo.complete is (isinstance(jobs, dict) and isinstance(jobs.get("jobs"), list)
                             and len(repo.jobs) == len(jobs["jobs"]))
