"""What a job's start is made of, checked before anything is sent: names, the job's input, its
summary, the actors of decisions, and whether the agent answers."""

from __future__ import annotations

import getpass
import os
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from jobgov.client.errors import InputError, JobGovError, NotFoundError, UnreachableError
from jobgov.domain.config import PlanConfig
from jobgov.temporal.payloads import JobInput

__all__ = ["AGENT_CHECK_TIMEOUT", "NAME_PATTERN", "build_job_input", "check_agent_answers", "check_name",
           "default_actor", "job_summary", "model"]

#: Plan and job names: they go into workflow ids and visibility queries, so no quotes or spaces.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")

_M = TypeVar("_M", bound=BaseModel)


def default_actor() -> str:
    """Who decides when nobody says: ``$USER``, else the login name, else ``unknown``."""
    try:
        return os.environ.get("USER") or getpass.getuser() or "unknown"
    except (OSError, KeyError):  # getpass fails without a passwd entry (containers)
        return "unknown"


def check_name(kind: str, value: str) -> str:
    """Validate a plan or job name; raises :class:`InputError` with the rule."""
    if not NAME_PATTERN.fullmatch(value):
        raise InputError(f"{kind} name {value!r} is invalid: use letters, digits, '.', '_' and '-' "
                         f"(starting with a letter or digit, at most 200 characters)")
    return value


def build_job_input(plan: str, job: str, agent_url: str, worktree: str, session_id: str | None = None,
                    prompt: str | None = None, config: PlanConfig | None = None,
                    agent_queue: str | None = None, owner: str | None = None) -> JobInput:
    """Validate a job's start parameters (names, URL, absolute worktree, session or prompt).

    Raises:
        InputError: What is wrong, in one line.
    """
    check_name("plan", plan)
    check_name("job", job)
    if not re.match(r"https?://[^/\s]+", agent_url):
        raise InputError(f"agent URL {agent_url!r} must be an http:// or https:// URL")
    if not os.path.isabs(worktree):
        raise InputError(f"worktree {worktree!r} must be an absolute path")
    if session_id is None and prompt is None:
        raise InputError("give a session id (--session) or a prompt (--prompt)")
    if session_id is not None and prompt is not None:
        raise InputError("give a session id (--session: govern a session already at work) or a prompt "
                         "(--prompt: start a new session with it), not both")
    return model(JobInput, plan=plan, job=job, agent_url=agent_url, worktree=worktree, session_id=session_id,
                  prompt=prompt, config=config or PlanConfig(), agent_queue=agent_queue, owner=owner)


def job_summary(job_input: JobInput) -> str:
    """What the Temporal UI's workflow list says a job is: plan/job and its prompt's first line."""
    if job_input.prompt is not None:
        first = next((line.strip() for line in job_input.prompt.splitlines() if line.strip()), "")
        what = first if len(first) <= 100 else first[:99] + "…"
    else:
        what = f"governs session {job_input.session_id}"
    return f"{job_input.plan}/{job_input.job}: {what}"


#: Seconds the start-time check of an agent may take.
AGENT_CHECK_TIMEOUT = 10.0


async def check_agent_answers(agent_url: str, session_id: str | None = None) -> None:
    """Check that the agent at ``agent_url`` answers and, when given, has ``session_id``.

    Raises:
        UnreachableError: The agent does not answer (names it and why).
        NotFoundError: The agent has no such session.
        JobGovError: The agent answered with an error.
    """
    import httpx  # only ``job start`` needs it: the other commands load less

    from jobgov.opencode.credentials import AgentCredentials, CredentialsError

    try:  # the password, as the worker has it, from this process's environment
        auth = AgentCredentials.from_environ().auth_for(agent_url)
    except CredentialsError as exc:
        raise InputError(str(exc)) from None
    path = f"/session/{session_id}" if session_id is not None else "/global/health"
    try:
        async with httpx.AsyncClient(base_url=agent_url.rstrip("/"), timeout=AGENT_CHECK_TIMEOUT, auth=auth) as http:
            response = await http.get(path)
    except httpx.HTTPError as exc:
        raise UnreachableError(f"the agent at {agent_url} is not reachable ({type(exc).__name__}: "
                               f"{exc or 'no answer'}); is `opencode serve` running there?") from None
    if response.status_code in (401, 403):
        raise JobGovError(f"the agent at {agent_url} answered HTTP {response.status_code}: it wants a password; "
                          "set OPENCODE_SERVER_PASSWORD (and OPENCODE_SERVER_USERNAME) or JOBGOV_AGENT_CREDENTIALS "
                          "here and on the workers, or pass --no-agent-check")
    if response.status_code == 404 and session_id is not None:
        raise NotFoundError(f"the agent at {agent_url} has no session {session_id}")
    if response.status_code >= 400:
        raise JobGovError(f"the agent at {agent_url} answered GET {path} with HTTP {response.status_code}: "
                          f"{response.text[:200]}")


def model(cls: type[_M], **values: Any) -> _M:
    """Build a message, turning pydantic's report into a one-line :class:`InputError`."""
    try:
        return cls(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or cls.__name__}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        )
        raise InputError(problems) from None
