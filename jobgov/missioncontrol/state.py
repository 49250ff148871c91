"""Reading Mission Control's state files: what it runs, and the permission policy it gives each job.

Mission Control (the opencode plugin) keeps each repository's state in
``~/.local/share/opencode-mission-control/<repo>/state/``:

- ``jobs.json``: ``{"version": 3, "jobs": [...], "updatedAt"}``, written by atomic rename;
- ``plan.json``: the active plan, with an optional ``permissionPolicy`` and per-job ones;
- ``config.json``: its settings, with ``defaultPermissionPolicy`` (the global policy).

Nothing here raises on what it reads: every problem is a :class:`StateProblem` naming the file
and the field, and a job whose entry cannot be read is never taken for a job that went away.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jobgov.domain.asks import Action
from jobgov.domain.config import LocatedPolicy, PermissionsConfig

__all__ = [
    "DEFAULT_ROOT",
    "KNOWN_VERSIONS",
    "McJob",
    "McPolicies",
    "RepoState",
    "StateProblem",
    "find_state_dirs",
    "read_repo",
    "safe_name",
    "translate_policy",
]

#: Where Mission Control keeps its state (it does not read XDG_DATA_HOME).
DEFAULT_ROOT = Path.home() / ".local" / "share" / "opencode-mission-control"
#: The ``jobs.json`` versions jobgov has read; others are read too, with a warning.
KNOWN_VERSIONS = (1, 2, 3)
McStatus = Literal["running", "completed", "failed", "stopped"]
_STATUSES: tuple[McStatus, ...] = ("running", "completed", "failed", "stopped")
_DECISIONS = {"auto-approve": Action.AUTO_APPROVE, "deny": Action.DENY, "ask-user": Action.ASK_USER}
#: Mission Control's policy keys and jobgov's categories; the first two are split by worktree.
_SCOPED = {"fileEdit": "file_edit", "shellCommand": "shell_command"}
_FLAT = {"networkAccess": "network_access", "installPackages": "install_packages", "mcpTools": "mcp_tools"}


@dataclass(frozen=True)
class StateProblem:
    """Something in a state file jobgov could not use: ``where`` names the file (and field)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class McJob:
    """One job of ``jobs.json`` (the fields jobgov uses)."""

    id: str
    name: str
    status: McStatus
    worktree_path: str | None = None
    plan_id: str | None = None
    server_url: str | None = None
    remote_session_id: str | None = None

    @property
    def serve_mode(self) -> bool:
        """Launched as ``opencode serve`` with its session known: jobgov can govern it."""
        return bool(self.server_url and self.remote_session_id and self.worktree_path)


@dataclass
class McPolicies:
    """The permission policies in ``plan.json`` and ``config.json``: Mission Control takes the
    first it finds of the job's, the plan's and the global one, whole (it does not merge them)."""

    plan_id: str | None = None
    plan: PermissionsConfig | None = None
    jobs: dict[str, PermissionsConfig] = field(default_factory=dict)
    global_: PermissionsConfig | None = None

    def for_job(self, job: McJob) -> PermissionsConfig | None:
        """The policy of ``job`` (``None``: none set; jobgov's defaults apply)."""
        if job.plan_id is not None and job.plan_id == self.plan_id:
            mine = self.jobs.get(job.name)
            if mine is not None:
                return mine
            if self.plan is not None:
                return self.plan
        return self.global_


@dataclass
class RepoState:
    """One repository's state directory, as read just now."""

    state_dir: Path
    repo: str
    jobs: list[McJob] = field(default_factory=list)
    policies: McPolicies = field(default_factory=McPolicies)
    problems: list[StateProblem] = field(default_factory=list)
    #: ``jobs.json`` was read whole, every entry understood: a job missing from it is gone.
    complete: bool = False
    #: ``plan.json`` and ``config.json`` could be read (or are absent): the policies are known.
    policies_known: bool = True
    warnings: list[str] = field(default_factory=list)


def find_state_dirs(path: Path) -> list[Path]:
    """The state directories under ``path``: ``path`` itself when it is one (it holds
    ``jobs.json`` or is named ``state``), else every ``<repo>/state`` in it."""
    if path.name == "state" or (path / "jobs.json").exists():
        return [path]
    try:
        return sorted(p / "state" for p in path.iterdir() if (p / "state").is_dir())
    except OSError:
        return []


def read_repo(state_dir: Path) -> RepoState:
    """Read a state directory's ``jobs.json``, ``plan.json`` and ``config.json``."""
    state = RepoState(state_dir=state_dir, repo=state_dir.parent.name if state_dir.name == "state" else state_dir.name)
    _read_jobs(state)
    _read_policies(state)
    return state


_UNREADABLE = object()


def _load(path: Path, state: RepoState, *, required: bool) -> Any:
    """The JSON in ``path``: ``None`` when it is absent, ``_UNREADABLE`` (with a problem) when
    it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            state.problems.append(StateProblem(str(path), "missing (Mission Control writes it with its first job)"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        state.problems.append(StateProblem(str(path), f"cannot be read ({type(exc).__name__}: {exc})"))
        return _UNREADABLE
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        state.problems.append(StateProblem(f"{path}:{exc.lineno}:{exc.colno}",
                                           f"not JSON ({exc.msg}; half-written or edited by hand?)"))
        return _UNREADABLE
    except RecursionError:
        state.problems.append(StateProblem(str(path), "not JSON jobgov can read (nested too deep)"))
        return _UNREADABLE


def _read_jobs(state: RepoState) -> None:
    path = state.state_dir / "jobs.json"
    data = _load(path, state, required=True)
    if data is None or data is _UNREADABLE:
        return
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        state.problems.append(StateProblem(f"{path}: jobs", 'expected an object with a "jobs" list'))
        return
    version = data.get("version")
    if version not in KNOWN_VERSIONS:
        state.warnings.append(f"{path}: version {version!r} is not one jobgov has read ({KNOWN_VERSIONS}); "
                              "reading the fields it knows")
    complete = True
    for index, entry in enumerate(data["jobs"]):
        job = _job(entry, f"{path}: jobs[{index}]", state)
        if job is None:
            complete = False
        else:
            state.jobs.append(job)
    state.complete = complete


def _text(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return value if isinstance(value, str) and value.strip() else None


def _job(entry: object, where: str, state: RepoState) -> McJob | None:
    if not isinstance(entry, dict):
        state.problems.append(StateProblem(where, f"expected an object, got {type(entry).__name__}"))
        return None
    missing = [key for key in ("id", "name", "status") if _text(entry, key) is None]
    if missing:
        state.problems.append(StateProblem(where, f"no {', '.join(missing)} (a text field is required)"))
        return None
    status = entry["status"]
    if status not in _STATUSES:
        state.problems.append(StateProblem(f"{where}.status", f"{status!r} is not one of {', '.join(_STATUSES)}"))
        return None
    return McJob(id=entry["id"], name=entry["name"], status=status, worktree_path=_text(entry, "worktreePath"),
                 plan_id=_text(entry, "planId"), server_url=_text(entry, "serverUrl"),
                 remote_session_id=_text(entry, "remoteSessionID"))


def _read_policies(state: RepoState) -> None:
    policies = state.policies
    plan = _load(state.state_dir / "plan.json", state, required=False)
    config = _load(state.state_dir / "config.json", state, required=False)
    if plan is _UNREADABLE or config is _UNREADABLE:
        state.policies_known = False
        return
    where = f"{state.state_dir / 'plan.json'}"
    if isinstance(plan, dict):
        policies.plan_id = _text(plan, "id")
        policies.plan = _policy(plan.get("permissionPolicy"), f"{where}: permissionPolicy", state)
        specs = plan.get("jobs")
        if not isinstance(specs, list):
            if specs is not None:
                state.warnings.append(f"{where}: jobs: expected a list; its jobs' own policies are not used")
            specs = []
        for index, spec in enumerate(specs):
            if isinstance(spec, dict) and _text(spec, "name") and spec.get("permissionPolicy") is not None:
                job_policy = _policy(spec["permissionPolicy"], f"{where}: jobs[{index}].permissionPolicy", state)
                if job_policy is not None:
                    policies.jobs[spec["name"]] = job_policy
    elif plan is not None:
        state.problems.append(StateProblem(where, "expected an object"))
        state.policies_known = False
    where = f"{state.state_dir / 'config.json'}"
    if isinstance(config, dict):
        policies.global_ = _policy(config.get("defaultPermissionPolicy"), f"{where}: defaultPermissionPolicy", state)
    elif config is not None:
        state.problems.append(StateProblem(where, "expected an object"))
        state.policies_known = False


def _policy(value: object, where: str, state: RepoState) -> PermissionsConfig | None:
    """A Mission Control policy, translated; its unknown values and keys are warned about."""
    if value is None:
        return None
    if not isinstance(value, dict):
        state.warnings.append(f"{where}: expected an object; not used (jobgov's defaults apply)")
        return None
    translated, notes = translate_policy(value)
    state.warnings += [f"{where}.{note}" for note in notes]
    return translated


def translate_policy(policy: dict[str, Any]) -> tuple[PermissionsConfig, list[str]]:
    """Mission Control's ``permissionPolicy`` (with or without its ``permissions`` wrapper) as
    jobgov's permissions, and what could not be translated. An unknown decision becomes
    ``ask-user`` (a person decides what jobgov cannot read); keys it has not (file reads,
    project code, doom loops, other tools) keep jobgov's defaults."""
    body = policy.get("permissions", policy)
    notes: list[str] = []
    if not isinstance(body, dict):
        return PermissionsConfig(), [f"permissions: expected an object, got {type(body).__name__}"]

    def decision(value: object, key: str) -> Action | None:
        if value is None:
            return None
        action = _DECISIONS.get(value) if isinstance(value, str) else None
        if action is None:
            notes.append(f"{key}: {value!r} is not auto-approve, deny or ask-user; ask-user instead")
            return Action.ASK_USER
        return action

    categories: dict[str, LocatedPolicy] = {}
    for key, category in _SCOPED.items():
        value = body.get(key)
        if isinstance(value, dict):
            inside = decision(value.get("insideWorktree"), f"{key}.insideWorktree")
            outside = decision(value.get("outsideWorktree"), f"{key}.outsideWorktree")
            if inside or outside:
                categories[category] = LocatedPolicy(inside_worktree=inside, outside_worktree=outside)
        elif value is not None:  # one decision for both places
            action = decision(value, key)
            categories[category] = LocatedPolicy(inside_worktree=action, outside_worktree=action)
    for key, category in _FLAT.items():
        action = decision(body.get(key), key)
        if action is not None:
            categories[category] = LocatedPolicy(inside_worktree=action, outside_worktree=action)
    notes += [f"{key}: not a Mission Control policy key jobgov knows; ignored"
              for key in body if key not in _SCOPED and key not in _FLAT]
    return PermissionsConfig(**categories), notes


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(value: str) -> str:
    """``value`` as a jobgov plan or job name: letters, digits, ``.``, ``_`` and ``-``."""
    name = _UNSAFE.sub("-", value).strip("-._")[:200]
    return name or "unnamed"
