"""The plan config schema: one YAML file per plan, every key optional, safe defaults.

:class:`PlanConfig` is plain data and crosses into workflows unchanged;
:meth:`PlanConfig.policy_for` gives the effective (merged) permission policy of
one job. Reading the YAML file (with line-numbered errors) is
:mod:`jobgov.configfile`'s job.
"""

from __future__ import annotations

import re
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from jobgov.domain.asks import LOCATED_CATEGORIES, Action, Category
from jobgov.domain.budget import BudgetConfig
from jobgov.domain.usage import PricingConfig

_ACTIONS = ", ".join(a.value for a in Action)


def _parse_action(value: object) -> Action:
    if isinstance(value, Action):
        return value
    if isinstance(value, str):
        try:
            return Action(value)
        except ValueError:
            pass
    raise ValueError(f"unknown action {value!r}; expected one of: {_ACTIONS}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LocatedPolicy(_Strict):
    """Actions for one category, split by where the operation happens."""

    inside_worktree: Action | None = None
    """Operations whose every path stays inside the job's worktree."""
    outside_worktree: Action | None = None
    """Operations touching anything outside the worktree (or somewhere unknown)."""
    project_code: Action | None = None
    """``shell_command`` only: commands that run the project's own code (tests, builds, package
    scripts, ``python file.py``, git hooks), which jobgov does not read. Default auto-approve."""

    @field_validator("inside_worktree", "outside_worktree", "project_code", mode="before")
    @classmethod
    def _action(cls, value: object) -> Action | None:
        return None if value is None else _parse_action(value)

    def over(self, base: LocatedPolicy) -> LocatedPolicy:
        """Merge this override key by key over ``base``."""
        return LocatedPolicy(
            inside_worktree=self.inside_worktree or base.inside_worktree,
            outside_worktree=self.outside_worktree or base.outside_worktree,
            project_code=self.project_code or base.project_code,
        )


def _category_value(value: object) -> LocatedPolicy | None:
    """A category is one action (for both locations) or an inside/outside mapping."""
    if value is None or isinstance(value, LocatedPolicy):
        return value
    if isinstance(value, str | Action):
        action = _parse_action(value)
        return LocatedPolicy(inside_worktree=action, outside_worktree=action)
    if isinstance(value, dict):
        return LocatedPolicy.model_validate(value)
    raise ValueError(
        f"expected an action ({_ACTIONS}) or a mapping with inside_worktree/outside_worktree, "
        f"got {type(value).__name__}"
    )


class PermissionsConfig(_Strict):
    """Actions per category; missing categories fall back to the plan, then to the defaults."""

    file_edit: LocatedPolicy | None = None
    """Edits and writes of files (opencode ``edit``, ``external_directory`` from an edit)."""
    file_read: LocatedPolicy | None = None
    """Reads, globs, greps and listings."""
    shell_command: LocatedPolicy | None = None
    """Every simple command of a shell command line."""
    network_access: LocatedPolicy | None = None
    """Web fetches and searches, network clients in shell commands."""
    install_packages: LocatedPolicy | None = None
    """Package installs in any ecosystem (judged by this category alone)."""
    mcp_tools: LocatedPolicy | None = None
    """Tools that are not opencode built-ins (MCP servers, plugins)."""
    doom_loop: LocatedPolicy | None = None
    """opencode's repeated-identical-call guard."""
    other: LocatedPolicy | None = None
    """Anything jobgov does not recognise."""

    @field_validator("*", mode="before")
    @classmethod
    def _value(cls, value: object, info: ValidationInfo) -> LocatedPolicy | None:
        located = _category_value(value)
        if located is not None and located.project_code is not None and info.field_name != "shell_command":
            raise ValueError(f"project_code applies to shell_command only, not {info.field_name}")
        if (
            located is not None
            and Category(info.field_name or "other") not in LOCATED_CATEGORIES
            and located.inside_worktree != located.outside_worktree
        ):
            raise ValueError(f"{info.field_name} is not split by worktree; give one action ({_ACTIONS})")
        return located

    def over(self, base: PermissionsConfig) -> PermissionsConfig:
        """Merge this override category by category, key by key, over ``base``."""
        merged: dict[str, LocatedPolicy | None] = {}
        for name in type(self).model_fields:
            mine: LocatedPolicy | None = getattr(self, name)
            theirs: LocatedPolicy | None = getattr(base, name)
            merged[name] = mine.over(theirs) if mine and theirs else mine or theirs
        return PermissionsConfig.model_validate(merged)


def _located(inside: Action, outside: Action | None = None) -> LocatedPolicy:
    return LocatedPolicy(inside_worktree=inside, outside_worktree=outside or inside)


#: The policy of a job that has none: what a careful reviewer would allow unattended.
DEFAULT_PERMISSIONS = PermissionsConfig(
    file_edit=_located(Action.AUTO_APPROVE, Action.DENY),
    file_read=_located(Action.AUTO_APPROVE, Action.ASK_USER),
    shell_command=LocatedPolicy(inside_worktree=Action.AUTO_APPROVE, outside_worktree=Action.DENY,
                                project_code=Action.AUTO_APPROVE),
    network_access=_located(Action.DENY),
    install_packages=_located(Action.ASK_USER),
    mcp_tools=_located(Action.AUTO_APPROVE),
    doom_loop=_located(Action.ASK_USER),
    other=_located(Action.ASK_USER),
)


class Rule(_Strict):
    """An ordered rule that can only make a decision stricter."""

    match: str = Field(min_length=1)
    """A glob (``*`` matches anything, ``?`` one character) over the operation's subject:
    the simple command for shell operations, the canonical path for files, the URL for
    web access, the tool name for MCP tools."""
    action: Action
    """``deny`` or ``ask-user``: rules never loosen a decision."""
    category: Category | None = None
    """The category it applies to; every category when omitted."""

    @field_validator("action", mode="before")
    @classmethod
    def _stricter_only(cls, value: object) -> Action:
        action = _parse_action(value)
        if action is Action.AUTO_APPROVE:
            raise ValueError("rules can only make a decision stricter: use deny or ask-user")
        return action

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: object) -> Category | None:
        if value is None or isinstance(value, Category):
            return value
        try:
            return Category(str(value))
        except ValueError:
            known = ", ".join(c.value for c in Category)
            raise ValueError(f"unknown category {value!r}; expected one of: {known}") from None

    def describe(self) -> str:
        """A short, stable label used in decisions and audit logs."""
        scope = self.category.value if self.category else "*"
        return f"{scope}: {self.match} -> {self.action.value}"


class ShellConfig(_Strict):
    """How shell commands are judged beyond the permissions."""

    trust: list[str] = []
    """Commands jobgov does not model that this plan (or job) trusts, by name or path glob
    (``just``, ``golangci-lint``, ``./scripts/*.sh``): such a command is judged like the
    project's own code, as long as everything else about it is inside and static."""

    @field_validator("trust")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name.strip() or name != name.strip():
                raise ValueError(f"trust entries are command names or path globs, got {name!r}")
        return value


class JobConfig(_Strict):
    """Per-job overrides, merged key by key over the plan's settings."""

    permissions: PermissionsConfig = PermissionsConfig()
    rules: list[Rule] = []
    """Appended after the plan's rules."""
    shell: ShellConfig = ShellConfig()
    """Appended to the plan's trust list."""


class EffectivePolicy(_Strict):
    """The merged policy of one job: every category resolved, plus the ordered rules."""

    permissions: PermissionsConfig
    rules: list[Rule] = []
    trust: list[str] = []
    """Unmodelled commands the plan and job trust (``shell.trust``)."""

    def action_for(self, category: Category, inside: bool | None) -> Action:
        """The configured action for ``category`` at that location (unknown = outside)."""
        located: LocatedPolicy | None = getattr(self.permissions, category.value)
        if located is None:  # pragma: no cover - defaults cover every category
            return Action.ASK_USER
        action = located.inside_worktree if inside else located.outside_worktree
        return action or Action.ASK_USER

    def project_code_action(self) -> Action:
        """What running the project's own code gets (``shell_command.project_code``)."""
        shell = self.permissions.shell_command
        return (shell.project_code if shell is not None else None) or Action.AUTO_APPROVE

    def trusts(self, command: str) -> bool:
        """The trust list names ``command`` (as written, or by its basename for plain names)."""
        base = command.rsplit("/", 1)[-1]
        return any(fnmatchcase(command, pattern) or ("/" not in pattern and fnmatchcase(base, pattern))
                   for pattern in self.trust)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_TIMEDELTA = TypeAdapter(timedelta)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """``90``, ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` as a :class:`timedelta`."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
            if seconds > 0:
                return timedelta(seconds=seconds)
        try:  # ISO 8601 ("PT1H"): how the data converter serialises a timedelta
            parsed = _TIMEDELTA.validate_python(text)
        except ValidationError:
            parsed = None
        if parsed is not None and parsed > timedelta(0):
            return parsed
    raise ValueError(f"expected a positive duration like 90s, 15m, 1h or 2d, got {value!r}")


class ApprovalsConfig(_Strict):
    """How long an ask-user waits for a person, and what happens then (fail closed)."""

    timeout: timedelta | None = timedelta(hours=1)
    """How long an ask waits (``null``: forever)."""
    on_timeout: Literal["deny", "kill"] = "deny"
    """``deny`` the ask (the agent is told why and carries on), or ``kill`` the job."""

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta | None:
        return None if value is None else parse_duration(value)


class NotifyConfig(_Strict):
    """Where notifications go besides the worker log and the workflow's details."""

    webhook: str | None = None
    """A URL that receives each notification as a JSON POST. ``${VAR}`` is expanded from
    the worker's environment, so a secret token never enters workflow history."""


class AgentConfig(_Strict):
    """How jobgov talks to the agent."""

    continue_prompt: str = "Continue with the task where you left off."
    """Sent to the agent when a paused job resumes, or a run ended unfinished."""
    on_interrupted: Literal["continue", "fail"] = "continue"
    """A run that ended with its work unfinished (the agent restarted mid-step, someone else aborted
    it): send ``continue_prompt`` so the work resumes, or fail the job naming what happened."""
    max_continues: int = Field(default=3, ge=0)
    """Continues sent for unfinished runs before the job fails instead."""
    start_timeout: timedelta = timedelta(minutes=2)
    """How long a job keeps trying to create its session on an agent that does not answer (a
    warning shows meanwhile) before it fails naming the agent and the error."""
    unreachable_notify_after: timedelta = timedelta(seconds=60)
    """How long the agent may be unreachable before a notification says so (the job keeps
    retrying with backoff all along)."""
    queue: str | None = Field(default=None, min_length=1)
    """The task queue of the workers on the agent's host (``jobgov worker --agent-queue Q``): the
    job's stream, session calls, prompts, replies and aborts run there, where the worktree is;
    ``None``: on the workflow's own task queue. ``job start --agent-queue`` overrides it."""

    @field_validator("unreachable_notify_after", "start_timeout", mode="before")
    @classmethod
    def _grace(cls, value: object) -> timedelta:
        return parse_duration(value)


class PlanConfig(_Strict):
    """A plan's whole configuration file."""

    plan: str | None = None
    """The plan's name (a label; the CLI's ``--plan`` decides the workflow id)."""
    permissions: PermissionsConfig = PermissionsConfig()
    rules: list[Rule] = []
    shell: ShellConfig = ShellConfig()
    """How shell commands are judged beyond the permissions (the trust list)."""
    jobs: dict[str, JobConfig] = {}
    approvals: ApprovalsConfig = ApprovalsConfig()
    notify: NotifyConfig = NotifyConfig()
    agent: AgentConfig = AgentConfig()
    # sections added by usage work
    pricing: PricingConfig = PricingConfig()
    """Per-model price overrides in USD per million tokens, keyed ``provider/model``."""
    budget: BudgetConfig = BudgetConfig()
    """Spending limits of each job and of the whole plan."""

    def policy_for(self, job: str | None = None) -> EffectivePolicy:
        """The effective policy of ``job``: defaults, then the plan, then the job's overrides."""
        permissions = self.permissions.over(DEFAULT_PERMISSIONS)
        rules = list(self.rules)
        trust = list(self.shell.trust)
        override = self.jobs.get(job) if job is not None else None
        if override is not None:
            permissions = override.permissions.over(permissions)
            rules += override.rules
            trust += override.shell.trust
        return EffectivePolicy(permissions=permissions, rules=rules, trust=trust)


# ---------------------------------------------------------------------------
# Loading


