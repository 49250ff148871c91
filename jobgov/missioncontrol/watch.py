"""``jobgov mc watch``: one governed job for each serve-mode job Mission Control runs.

The watcher reads Mission Control's state files (:mod:`jobgov.missioncontrol.state`) every
``interval`` seconds and makes Temporal agree with them:

- a ``running`` job with ``serverUrl`` and ``remoteSessionID`` gets one governed job attached to
  that session (plan: its ``planId``, else the repository's name; job: its name; worktree: its
  ``worktreePath``), owned by Mission Control: its session's idle does not end it;
- when Mission Control marks the job ``completed``, ``failed`` or ``stopped``, or removes it,
  the governed job ends so (``stopped`` and removed: killed).

What the watcher knows lives in Temporal, not in the watcher: each governed job's memo names
its Mission Control job and state directory, so a restarted watcher (or a second one) finds the
jobs it started and never starts one twice. A state file that is missing, half-written or
malformed is logged, once while it lasts, and read again on the next pass; a job whose entry
cannot be read is never taken for a job that went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from jobgov import names
from jobgov.client import JobGovClient, JobGovError, RejectedError
from jobgov.client.errors import AlreadyRunningError, InputError, NotFoundError
from jobgov.domain.config import PermissionsConfig, PlanConfig
from jobgov.missioncontrol.state import McJob, RepoState, find_state_dirs, read_repo, safe_name

__all__ = ["MEMO_KEY", "OWNER", "Governed", "Watcher"]

#: ``JobInput.owner`` of the jobs the watcher starts, and the actor of their ends.
OWNER = "mission-control"
#: The memo key of a governed job: ``{"job_id", "name", "state_dir"}`` of its Mission Control job.
MEMO_KEY = "jobgov.mission-control"
#: Seconds before a job that could not be started is tried again (doubling up to the maximum).
RETRY_FIRST, RETRY_MAX = 2.0, 60.0

Outcome = Literal["completed", "failed", "stopped"]
_OUTCOMES: dict[str, Outcome] = {"completed": "completed", "failed": "failed", "stopped": "stopped"}


def _jobgov_names(repo: RepoState, job: McJob) -> tuple[str, str]:
    """The plan and job names a Mission Control job is governed under: its plan's id (else its
    repository's name) and its own name, as jobgov allows names."""
    return safe_name(job.plan_id or repo.repo), safe_name(job.name)


class _Taken(JobGovError):
    """The governed job's workflow id is running for another Mission Control job."""


@dataclass
class Governed:
    """A Mission Control job and the governed job the watcher started (or found) for it."""

    mc_id: str
    state_dir: str
    plan: str
    job: str
    ended: bool = False


class Watcher:
    """Follows Mission Control's state under ``root`` (one ``<repo>/state`` directory, or the
    directory of all of them) and governs its serve-mode jobs.

    Args:
        jg: The jobgov client.
        root: A state directory, or Mission Control's data directory.
        config: The plan config for every job; ``None``: each job's Mission Control policy.
        task_queue: The jobgov workers' task queue.
        agent_queue: The agent-host workers' task queue (``jobgov worker --agent-queue``).
        check_agent: Check that the agent answers and has the session before starting.
        interval: Seconds between passes over the state files.
    """

    def __init__(self, jg: JobGovClient, root: Path, *, config: PlanConfig | None = None,
                 task_queue: str = names.DEFAULT_TASK_QUEUE, agent_queue: str | None = None,
                 check_agent: bool = True, interval: float = 1.0, log: logging.Logger | None = None) -> None:
        self._jg, self._root, self._config = jg, root, config
        self._task_queue, self._agent_queue, self._check_agent = task_queue, agent_queue, check_agent
        self.interval = interval
        self._log = log or logging.getLogger("jobgov.mc")
        #: By Mission Control job id: the governed jobs this watcher knows of.
        self.governed: dict[str, Governed] = {}
        self._looked_up: set[str] = set()  # ended Mission Control jobs whose governed job was looked up
        self._retry: dict[str, tuple[float, float]] = {}  # job id: (not before, next delay)
        self._adopted = False
        self._said: dict[str, str] = {}
        self._saying: set[str] = set()

    # ------------------------------------------------------------------ the loop

    async def run(self, stop: asyncio.Event) -> None:
        """Pass over the state files every ``interval`` seconds until ``stop`` is set."""
        self._log.info("watching Mission Control's state in %s", self._root)
        while not stop.is_set():
            await self.sync()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    async def sync(self) -> None:
        """One pass: read every state directory, start and end governed jobs to match. Never raises
        for what it reads or for Temporal's answers: each problem is logged and tried again."""
        self._saying = set()
        try:
            if not self._adopted:
                await self._adopt()
            dirs = find_state_dirs(self._root)
            if not dirs:
                self._say("root", logging.WARNING, f"{self._root}: no Mission Control state here yet "
                                                    "(<repo>/state/jobs.json); looking again")
            for state_dir in dirs:
                try:
                    await self._sync_repo(read_repo(state_dir))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 -- a bug in one repository's pass must not stop the others
                    key = f"bug:{state_dir}:{type(exc).__name__}:{exc}"
                    if key not in self._said:  # with its traceback, once while it lasts
                        self._log.exception("pass over %s failed; trying again", state_dir)
                    self._say(key, logging.DEBUG, str(exc))
        finally:
            for key in set(self._said) - self._saying:  # a problem that went away is said again if it comes back
                del self._said[key]

    async def _sync_repo(self, repo: RepoState) -> None:
        for problem in repo.problems:
            self._say(f"problem:{problem.where}", logging.WARNING, f"{problem}; reading it again on the next pass")
        for warning in repo.warnings:
            self._say(f"warning:{warning}", logging.WARNING, warning)
        listed = {job.id for job in repo.jobs}
        for job in repo.jobs:
            if job.status == "running":
                if job.serve_mode:
                    await self._govern(repo, job)
                else:
                    self._say(f"tui:{job.id}", logging.INFO,
                              f"Mission Control job {job.name} runs without `opencode serve` (no serverUrl and "
                              "remoteSessionID): jobgov cannot govern it (Mission Control's useServeMode)")
            else:
                await self._ended(repo, job, _OUTCOMES[job.status], f"Mission Control marked it {job.status}")
        if repo.complete:  # every entry was read: a job that is not listed was removed
            for gone in [g for g in self.governed.values()
                         if g.state_dir == str(repo.state_dir) and g.mc_id not in listed and not g.ended]:
                await self._end(gone, "stopped", "removed from Mission Control's jobs.json")

    # ------------------------------------------------------------------ starting

    async def _govern(self, repo: RepoState, job: McJob) -> None:
        known = self.governed.get(job.id)
        if known is not None:
            return
        not_before, _ = self._retry.get(job.id, (0.0, RETRY_FIRST))
        if time.monotonic() < not_before:
            self._saying.add(f"start:{job.id}")  # still true: not said again when the next try fails alike
            return
        plan, name = _jobgov_names(repo, job)
        try:
            if await self._find(job, plan, name) is not None:
                return
        except JobGovError as exc:
            self._failed_start(job, str(exc))
            return
        if self._config is None and not repo.policies_known:
            self._say(f"policy:{job.id}", logging.WARNING,
                      f"Mission Control job {job.name}: its permission policy cannot be read yet (plan.json or "
                      "config.json above); it is governed once they can be")
            return
        config = self._config or PlanConfig(permissions=repo.policies.for_job(job) or PermissionsConfig())
        memo = {MEMO_KEY: {"job_id": job.id, "name": job.name, "state_dir": str(repo.state_dir)}}
        try:
            workflow_id = await self._jg.start_job(
                plan, name, job.server_url or "", job.worktree_path or "", session_id=job.remote_session_id,
                config=config, task_queue=self._task_queue, agent_queue=self._agent_queue,
                check_agent=self._check_agent, owner=OWNER, memo=memo)
        except AlreadyRunningError:
            return  # another watcher just started it: the next pass finds it by its memo
        except (JobGovError, InputError) as exc:
            self._failed_start(job, str(exc))
            return
        self._retry.pop(job.id, None)
        self.governed[job.id] = Governed(job.id, str(repo.state_dir), plan, name)
        self._log.info("governing Mission Control job %s (session %s at %s) as %s", job.name,
                       job.remote_session_id, job.server_url, workflow_id)

    def _failed_start(self, job: McJob, why: str) -> None:
        _, delay = self._retry.get(job.id, (0.0, RETRY_FIRST))
        self._retry[job.id] = (time.monotonic() + delay, min(delay * 2, RETRY_MAX))
        self._say(f"start:{job.id}", logging.WARNING,
                  f"cannot govern Mission Control job {job.name} yet: {why}; trying again")

    async def _find(self, job: McJob, plan: str, name: str) -> Governed | None:
        """The governed job of ``job`` if there is one, running or ended (never started twice)."""
        workflow_id = names.job_workflow_id(plan, name)
        try:
            described = await self._jg.temporal.get_workflow_handle(workflow_id).describe()
            memo = await described.memo_value(MEMO_KEY, default=None)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise JobGovError(f"cannot look up {workflow_id}: {exc.message}") from None
        if isinstance(memo, dict) and memo.get("job_id") == job.id:
            found = Governed(job.id, str(memo.get("state_dir", "")), plan, name,
                             ended=described.status != WorkflowExecutionStatus.RUNNING)
            self.governed[job.id] = found
            return found
        if described.status == WorkflowExecutionStatus.RUNNING:
            raise _Taken(f"{workflow_id} is already running for another job (a name both map to); "
                         "it is governed once that one ends")
        return None

    async def _adopt(self) -> None:
        """Find the running governed jobs of earlier watchers (the memo says whose they are), so
        that jobs Mission Control removed while no watcher ran are ended too."""
        query = f"WorkflowType = '{names.JOB_WORKFLOW}' AND ExecutionStatus = 'Running'"
        try:
            async for execution in self._jg.temporal.list_workflows(query):
                try:
                    memo = (await execution.memo()).get(MEMO_KEY)
                except Exception:  # noqa: BLE001 -- a memo someone else wrote, in a form not ours
                    continue
                if not isinstance(memo, dict) or not isinstance(memo.get("job_id"), str):
                    continue
                plan = execution.typed_search_attributes.get(names.SA_PLAN)
                job = execution.typed_search_attributes.get(names.SA_JOB)
                if plan and job:
                    self.governed.setdefault(memo["job_id"], Governed(memo["job_id"], str(memo.get("state_dir", "")),
                                                                      plan, job))
        except Exception as exc:  # noqa: BLE001 -- the listing is retried on the next pass
            why = exc.message if isinstance(exc, RPCError) else f"{type(exc).__name__}: {exc}"
            self._say("adopt", logging.WARNING, f"cannot list the running jobs ({why}); trying again")
            return
        self._adopted = True

    # ------------------------------------------------------------------ ending

    async def _ended(self, repo: RepoState, job: McJob, outcome: Outcome, why: str) -> None:
        known = self.governed.get(job.id)
        if known is None and job.id not in self._looked_up:
            self._looked_up.add(job.id)  # a watcher that started after Mission Control ended the job
            try:
                known = await self._find(job, *_jobgov_names(repo, job))
            except _Taken:
                return  # never governed: nothing to end
            except JobGovError as exc:
                self._looked_up.discard(job.id)
                self._say(f"find:{job.id}", logging.WARNING, str(exc))
                return
        if known is not None and not known.ended:
            await self._end(known, outcome, why)

    async def _end(self, governed: Governed, outcome: Outcome, why: str) -> None:
        try:
            status = await self._jg.end_job(governed.job, outcome, by=OWNER, reason=why, plan=governed.plan)
        except (RejectedError, NotFoundError) as exc:  # it ended meanwhile (killed by a person, ...)
            self._log.info("%s/%s: not ended by the watcher: %s", governed.plan, governed.job, exc)
        except JobGovError as exc:
            self._say(f"end:{governed.mc_id}", logging.WARNING,
                      f"cannot end {governed.plan}/{governed.job} ({why}): {exc}; trying again")
            return
        else:
            self._log.info("%s/%s ended %s: %s", governed.plan, governed.job, status.state.value, why)
        governed.ended = True

    # ------------------------------------------------------------------ logging

    def _say(self, key: str, level: int, message: str) -> None:
        """Log ``message`` once while it stays true (each pass re-says what still holds)."""
        self._saying.add(key)
        if self._said.get(key) != message:
            self._said[key] = message
            self._log.log(level, "%s", message)

    def said(self) -> dict[str, str]:
        """What is being said now, by key (for tests and status)."""
        return dict(self._said)
