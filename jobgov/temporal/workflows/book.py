"""The job's book: every rule of governing one job, as pure, deterministic code.

:class:`JobBook` owns the job's state (:class:`~jobgov.temporal.payloads.JobCarry`) and
turns inputs (event batches from the stream activity, human decisions, plan
holds, the passage of time) into state changes plus a list of *effects* (reply
to an ask, abort the run, send a prompt, notify, report to the plan, restart
the stream with new inputs, finish). It never performs I/O and never reads a
clock: the workflow passes ``now`` in and carries out the effects. That keeps
the workflow thin and lets every rule be unit-tested without Temporal.

The state itself, what people read of it, and the moves many rules share (record a decision,
cancel the pending asks, pause, finish) are in :mod:`.book_base`; this module holds the rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from jobgov.domain import budget as budgets
from jobgov.domain.asks import Action, Decision
from jobgov.domain.decide import Outcome, decide
from jobgov.domain.items import AskItem, RepliedItem, SessionItem, StepItem
from jobgov.domain.usage import step_delta
from jobgov.domain.watermark import covered
from jobgov.temporal.metrics import COST_USD, TOKENS
from jobgov.temporal.payloads import ApproveInput, DenyInput, EndInput, EventBatch, KillInput, PlanHold, ResumeInput
from jobgov.temporal.state import (
    AgentReach,
    DecisionAction,
    DecisionRecord,
    Grant,
    JobState,
    PendingAsk,
    PendingEnd,
    RefusedDecision,
    keep_refused,
)
from jobgov.temporal.workflows.book_base import BookBase
from jobgov.temporal.workflows.effects import DecisionRejected, Effect, Notify, Prompt, Reply, ReportToPlan

#: How a decision the policy made alone (or through a grant) is recorded.
_RECORDED: dict[Outcome, DecisionAction] = {"approve": "auto-approve", "deny": "deny", "grant": "grant"}
#: How long an owner's end waits for the run's idle (and its last steps) to reach the job.
OWNER_END_GRACE = timedelta(seconds=15)
#: Why a cancelled job ended. A cancel request reaches the workflow without its sender's identity
#: (that stays in the history's WorkflowExecutionCancelRequested event).
CANCELLED_BY_TEMPORAL = "cancelled through Temporal (a cancel request from the UI, the temporal CLI or an API client)"


def _auto_action(decision: Decision) -> DecisionAction:
    """How the audit trail names a decision the stream activity applied."""
    return "auto-approve" if decision.action is Action.AUTO_APPROVE else "deny"


class JobBook(BookBase):
    """The rules of one job, over its state (:class:`~.book_base.BookBase`)."""

    def on_agent(self, reach: AgentReach, now: datetime) -> list[Effect]:
        """The stream reports the agent unreachable, or reachable again (one report per change)."""
        previous = self.s.agent
        if self.finished or (previous is not None and previous.reachable == reach.reachable):
            return []
        self.s.agent = reach
        if reach.reachable and previous is not None and previous.notified:
            text = f"job {self.job}: the agent at {self.agent_url} is reachable again"
            self.s.warnings.append(text)
            return [Notify("agent-unreachable", text)]
        return []

    # ------------------------------------------------------------------ stream events

    def on_batch(self, batch: EventBatch, now: datetime) -> list[Effect]:
        """Apply a batch of events from the stream activity, in order."""
        effects: list[Effect] = []
        for item in batch.items:
            self._note_work(item)
            if isinstance(item, StepItem):
                effects += self._on_step(item, now)
            elif isinstance(item, AskItem):
                effects += self._on_ask(item, now)
            elif isinstance(item, SessionItem):
                effects += self._on_session(item, now)
            elif isinstance(item, RepliedItem):
                self._on_replied(item, now)
        return effects

    def _note_work(self, item: AskItem | StepItem | SessionItem | RepliedItem) -> None:
        """Track evidence that the session ran, so that its next idle means "done".

        A "busy" is the evidence. A new step or a live ask is too (the stream may have missed
        the busy while reconnecting), except right after a resume: the aborted run's last step
        and idle arrive late, and only the continued run's own "busy" may count then.
        """
        busy = isinstance(item, SessionItem) and item.status in ("busy", "retry")
        live_ask = isinstance(item, AskItem) and not item.stale and not self.is_decided(item.ask.ask.id)
        if busy or live_ask:
            self.s.seen_busy, self.s.awaiting_run = True, False
        elif isinstance(item, StepItem) and not self._counted(item.step.part_id) and not self.s.awaiting_run:
            self.s.seen_busy = True

    def _on_step(self, item: StepItem, now: datetime) -> list[Effect]:
        part_id = item.step.part_id
        if part_id not in self.s.counted and covered(part_id, self.s.counted_through):
            return []  # counted in an earlier run of the job
        delta = step_delta(self.s.counted.get(part_id), item.step, item.cost.usd)
        if not delta.changes:
            return []  # a duplicate: nothing changes
        if delta.new:
            self.s.tokens = self.s.tokens + item.step.tokens
            self.s.agent_cost_usd += item.step.agent_cost_usd
            self.s.steps += 1
        self.s.counted[part_id] = item.cost.usd
        self.s.cost_usd += delta.usd
        model = f"{item.step.provider_id or '?'}/{item.step.model_id or '?'}"
        if delta.tokens:
            self.metric_events.append((TOKENS, delta.tokens, {"plan": self.plan, "model": model}))
        if delta.usd:
            self.metric_events.append((COST_USD, float(delta.usd), {"plan": self.plan, "model": model}))
        if item.cost.source not in self.s.cost_sources:
            self.s.cost_sources = sorted([*self.s.cost_sources, item.cost.source])
        self.s.budget, outcome = budgets.apply(self.s.budget, delta.usd, delta.tokens)
        effects: list[Effect] = [ReportToPlan()]
        for text in budgets.warning_texts(f"job {self.job}", outcome.warnings, grouped=self.grouped_warnings):
            self.s.warnings.append(text)
            effects.append(Notify("budget-warning", text))
        if outcome.exceeded:
            dims = ", ".join(outcome.exceeded_dimensions)
            why = f"job budget exceeded ({dims})"
            self.s.warnings.append(why)
            if outcome.action == "pause":
                effects += self._pause(now, why)
            elif outcome.action == "kill":
                effects += self._finish(JobState.KILLED, now, why)
            else:
                effects.append(Notify("budget-warning", why))
        return effects

    def _on_ask(self, item: AskItem, now: datetime) -> list[Effect]:
        ask = item.ask.ask
        if item.auto is not None and item.not_sent is not None:
            self._not_sent(item, now)
            return []
        if item.auto is None and not item.stale:
            self._forget_unapplied(ask.id)
        if self.is_decided(ask.id) or ask.id in self.s.pending:
            return []
        verdict = decide(self.policy, item.ask, holding=self.holding,
                         granted=self._granted(ask.permission, ask.patterns))
        decision = verdict.decision

        def record(action: DecisionAction, reply: Literal["once", "reject"], decided: Decision, actor: str,
                   message: str | None = None) -> None:
            self._record(ask_id=ask.id, permission=ask.permission, patterns=ask.patterns, action=action,
                         reply=reply, decision=decided, actor=actor, now=now, message=message)

        if item.auto is not None:
            # Already replied by the activity: record it, and re-check it with the same pure function.
            action = _auto_action(item.auto)
            reply: Literal["once", "reject"] = "once" if action == "auto-approve" else "reject"
            record(action, reply, item.auto, "policy")
            if decision.action is not item.auto.action or (action == "auto-approve" and self.holding):
                self.s.warnings.append(
                    f"re-check of {ask.id}: the stream activity applied {item.auto.action.value}, the workflow "
                    f"decides {decision.action.value}{' and holds asks' if self.holding else ''}"
                )
            return []
        if item.stale or self.finished or self.paused:
            why = "left behind by an aborted run" if item.stale else f"job is {self.s.state.value}"
            record("cancelled", "reject", decision, "jobgov", why)
            return [Reply(ask.id, "reject")]
        if verdict.reply is not None:
            record(_RECORDED[verdict.outcome], verdict.reply, decision, "policy", verdict.message)
            return [Reply(ask.id, verdict.reply, verdict.message)]
        timeout = self.config.approvals.timeout
        self.s.pending[ask.id] = PendingAsk(
            id=ask.id, permission=ask.permission, patterns=ask.patterns, category=decision.category,
            reason=decision.reason if decision.action is Action.ASK_USER else f"held: {decision.reason}",
            rule=decision.rule, asked_at=now, deadline=now + timeout if timeout is not None else None,
        )
        return [Notify("ask", f"job {self.job} asks {ask.permission} {' '.join(ask.patterns)}: {decision.reason}")]

    def on_collected(self, batch: EventBatch, now: datetime) -> list[Effect]:
        """What ``collect_stream`` read after the stream's cancel was requested (names.PATCH_0_9):
        applied like a batch, and its records marked ``collected``: the stream may yet say that
        it did not apply one (see :meth:`_forget_unapplied`)."""
        fresh = {item.ask.ask.id for item in batch.items if isinstance(item, AskItem) and item.auto is not None
                 and not item.not_sent and not self.is_decided(item.ask.ask.id)}
        effects = self.on_batch(batch, now)
        self.s.decisions = [d.model_copy(update={"collected": True}) if d.request_id in fresh else d
                            for d in self.s.decisions]
        return effects

    def _forget_unapplied(self, ask_id: str) -> None:
        """The stream delivers, unapplied, an ask whose record came by ``collect_stream``: its record
        was answered "cancelled" (the run was closing) and no reply went out. The collected record
        goes, and the ask is decided anew (a person's or the workflow's own records are kept)."""
        if ask_id not in self._decided:
            return  # the common case (an ask for a person): nothing recorded to scan for
        for n, record in enumerate(self.s.decisions):
            if record.request_id == ask_id and record.collected:
                self.s.decisions = [*self.s.decisions[:n], *self.s.decisions[n + 1:]]
                self._decided.discard(ask_id)
                self.s.decided = [d for d in self.s.decided if d != ask_id]
                return

    def _not_sent(self, item: AskItem, now: datetime) -> None:
        """The activity decided an ask by policy but no reply went out (``AskItem.not_sent``): the
        audit trail says the policy's decision and that the agent was answered nothing. No effect:
        a late reply to an ask of an ended run can restart its tool, and an answered one needs
        none. An ask recorded already keeps its record: a reply may have gone out from elsewhere
        (a person, the stream of another generation), and a record is never rewritten."""
        assert item.auto is not None and item.not_sent is not None
        ask = item.ask.ask
        if self.is_decided(ask.id) or ask.id in self.s.pending:
            return
        self._record(ask_id=ask.id, permission=ask.permission, patterns=ask.patterns, action="cancelled",
                     reply=None, decision=item.auto, actor="policy", now=now,
                     message=f"decided {_auto_action(item.auto)} by the policy; no reply sent: {item.not_sent}")

    def _on_session(self, item: SessionItem, now: datetime) -> list[Effect]:
        if item.status in ("busy", "retry"):
            return []
        if item.status == "aborted":
            # An abort leaves asks listed; a late approval could still run them. Cancel them all.
            return self._cancel_pending(now, "the run was aborted")
        if item.status == "error":
            self.s.seen_busy = True  # a failed run is still a run: the idle that follows ends the job
            self.s.error = item.message or "session error"
            return self._cancel_pending(now, "the run failed")
        if item.status == "idle" and self.s.state is JobState.RUNNING and self.s.seen_busy:
            effects = self._cancel_pending(now, "the run ended")
            if self.owner is not None:
                return effects + self._owned_idle(item.unfinished, now)
            if self.s.error:
                return effects + self._finish(JobState.FAILED, now, self.s.error)
            if item.unfinished and self.interrupt_aware:
                return effects + self._interrupted(item.unfinished, now)
            return effects + self._finish(JobState.COMPLETED, now, "the session is idle after its work")
        return []

    def _owned_idle(self, unfinished: str | None, now: datetime) -> list[Effect]:
        """The session of an owned job idles: its owner prompts it again or ends the job, not jobgov.
        What went wrong is said (a warning), and the next run's own work makes a new run."""
        self.s.seen_busy = False
        if self.s.ending is not None:  # the end its owner sent, now that the run's last steps are in
            return self._end_now(self.s.ending.outcome, self.s.ending.why, now)
        if self.s.error or unfinished:
            why = self.s.error or f"the run ended unfinished ({unfinished})"
            self.s.error = None
            self.s.warnings.append(f"job {self.job}: {why}; {self.owner} ends the job or prompts it again")
        return []

    def _interrupted(self, why: str, now: datetime) -> list[Effect]:
        """The run ended with its work undone: continue it (``agent.on_interrupted``) or fail."""
        agent = self.config.agent
        if agent.on_interrupted == "continue" and self.s.continues < agent.max_continues:
            self.s.continues += 1
            # Only the continued run's own work makes its idle mean "done".
            self.s.seen_busy, self.s.awaiting_run = False, True
            text = (f"job {self.job}: the run ended unfinished ({why}); sent continue "
                    f"{self.s.continues} of {agent.max_continues}")
            self.s.warnings.append(text)
            return [Prompt(agent.continue_prompt), Notify("resumed", text)]
        n = self.s.continues
        tried = f" after {n} continue{'s' if n != 1 else ''}" if n else ""
        self.s.error = f"the run ended unfinished{tried}: {why}"
        return self._finish(JobState.FAILED, now, self.s.error)

    def _on_replied(self, item: RepliedItem, now: datetime) -> None:
        pending = self.s.pending.pop(item.request_id, None)
        if pending is None:
            return
        reply: Literal["once", "always", "reject"] = item.reply if item.reply in ("once", "always") else "reject"  # type: ignore[assignment]
        self._record(ask_id=pending.id, permission=pending.permission, patterns=pending.patterns,
                     action="deny" if reply == "reject" else "approve", reply=reply, decision=pending,
                     actor="opencode", now=now)

    # ------------------------------------------------------------------ lifecycle

    def started(self, session_id: str, prompt_sent: bool) -> None:
        self.s.session_id = session_id
        self.s.prompt_sent = prompt_sent
        if self.s.state is JobState.STARTING:
            self.s.state = JobState.RUNNING

    def expire(self, now: datetime) -> list[Effect]:
        """Apply ``approvals.on_timeout`` to asks whose deadline has passed (fail closed), and say
        so when the agent has been unreachable for ``agent.unreachable_notify_after``."""
        effects: list[Effect] = []
        if self.s.ending is not None and self.s.ending.due <= now and not self.finished:
            return self._end_now(self.s.ending.outcome, self.s.ending.why, now)
        notify_at, agent = self._unreachable_notify_at(), self.s.agent
        if notify_at is not None and notify_at <= now and agent is not None:
            self.s.agent = agent.model_copy(update={"notified": True})
            text = (f"job {self.job}: the agent at {self.agent_url} has been unreachable since "
                    f"{agent.since:%Y-%m-%d %H:%M:%S} UTC ({agent.error or 'no answer'}); still retrying")
            self.s.warnings.append(text)
            effects.append(Notify("agent-unreachable", text))
        for pending in [p for p in self.s.pending.values() if p.deadline is not None and p.deadline <= now]:
            if self.config.approvals.on_timeout == "kill":
                return effects + self._finish(JobState.KILLED, now, f"ask {pending.id} timed out")
            del self.s.pending[pending.id]
            message = "Denied by jobgov: nobody approved this in time."
            self._record(ask_id=pending.id, permission=pending.permission, patterns=pending.patterns,
                         action="timeout", reply="reject", decision=pending, actor="timeout", now=now,
                         message=message)
            effects.append(Reply(pending.id, "reject", message))
        return effects

    # ------------------------------------------------------------------ human decisions

    def refuse(self, decision: Literal["approve", "deny", "resume", "kill"], request_id: str | None, by: str,
               reason: str, now: datetime) -> None:
        """A decision sent by signal could not apply: nothing changes but this record of it."""
        refused = RefusedDecision(decision=decision, request_id=request_id, by=by, reason=reason, at=now)
        self.s.refused = keep_refused(self.s.refused, refused)

    def validate_decision(self, request_id: str) -> None:
        if self.is_decided(request_id):
            raise DecisionRejected(f"ask {request_id} was already decided")
        if self.finished:
            raise DecisionRejected(f"job {self.job} is {self.s.state.value}; it takes no more decisions")
        if request_id not in self.s.pending:
            raise DecisionRejected(f"no pending ask {request_id} in job {self.job}")

    def approve(self, req: ApproveInput, now: datetime) -> tuple[DecisionRecord, list[Effect]]:
        self.validate_decision(req.request_id)
        pending = self.s.pending.pop(req.request_id)
        if req.always:
            # A job-scoped grant of this exact request; opencode's broad `always` patterns are never sent.
            self.s.grants.append(Grant(permission=pending.permission, patterns=pending.patterns, by=req.by, at=now))
        record = self._record(ask_id=pending.id, permission=pending.permission, patterns=pending.patterns,
                              action="approve-always" if req.always else "approve", reply="once",
                              decision=pending, actor=req.by, now=now, message=req.reason)
        effects: list[Effect] = [Reply(pending.id, "once")]
        for other in [p for p in self.s.pending.values() if req.always and self._granted(p.permission, p.patterns)]:
            del self.s.pending[other.id]
            self._record(ask_id=other.id, permission=other.permission, patterns=other.patterns, action="grant",
                         reply="once", decision=other, actor=req.by, now=now)
            effects.append(Reply(other.id, "once"))
        return record, effects

    def deny(self, req: DenyInput, now: datetime) -> tuple[DecisionRecord, list[Effect]]:
        self.validate_decision(req.request_id)
        pending = self.s.pending.pop(req.request_id)
        record = self._record(ask_id=pending.id, permission=pending.permission, patterns=pending.patterns,
                              action="deny", reply="reject", decision=pending, actor=req.by, now=now,
                              message=req.reason)
        return record, [Reply(pending.id, "reject", req.reason)]

    def validate_resume(self, req: ResumeInput) -> None:
        if not self.paused:
            raise DecisionRejected(f"job {self.job} is {self.display_state().value}, not paused")
        if self.s.plan_hold is not None:
            raise DecisionRejected(
                f"job {self.job} is held by plan {self.plan} ({self.s.plan_hold}); resume the plan instead"
            )
        self._raised(req)

    def _raised(self, req: ResumeInput) -> budgets.BudgetState:
        try:
            return budgets.raised_for_resume(self.s.budget, req.add_usd, req.add_tokens, "job")
        except ValueError as exc:
            raise DecisionRejected(str(exc)) from None

    def resume(self, req: ResumeInput, now: datetime) -> list[Effect]:
        self.validate_resume(req)
        self.s.budget = self._raised(req)
        return self._unpause(f"resumed by {req.by}")

    def validate_kill(self) -> None:
        if self.finished:
            raise DecisionRejected(f"job {self.job} is already {self.s.state.value}")

    def kill(self, req: KillInput, now: datetime) -> list[Effect]:
        self.validate_kill()
        return self._finish(JobState.KILLED, now, f"killed by {req.by}" + (f": {req.reason}" if req.reason else ""))

    def validate_end(self, req: EndInput) -> None:
        if self.owner is None:
            raise DecisionRejected(f"job {self.job} has no owner to end it (it ends when its session is idle "
                                   "after its work); use kill to stop it")
        if self.finished:
            raise DecisionRejected(f"job {self.job} is already {self.s.state.value}")

    def end(self, req: EndInput, now: datetime) -> list[Effect]:
        """The job's owner ended it: ``completed``, ``failed`` (its error says why) or ``stopped``
        (``killed``: the agent's run aborted, pending asks answered ``reject``)."""
        self.validate_end(req)
        why = f"{req.by}: {req.reason or f'the job {req.outcome}'}"
        if req.outcome == "stopped":
            return self._finish(JobState.KILLED, now, why)
        if self.s.seen_busy:
            # The owner saw the run end before this job's stream did: its last steps are on their way.
            self.s.ending = PendingEnd(outcome=req.outcome, why=why, due=now + OWNER_END_GRACE)
            return []
        return self._end_now(req.outcome, why, now)

    def fail(self, why: str, now: datetime) -> list[Effect]:
        """The job cannot be governed any more (its stream stopped for good): it fails, saying why."""
        if self.finished:
            return []
        self.s.error = why
        return self._finish(JobState.FAILED, now, why)

    def cancel(self, now: datetime) -> list[Effect]:
        """Temporal was asked to cancel the job's workflow: it is killed (the agent's run aborted,
        every pending ask answered ``reject``). ``killed``, a state every release knows, keeps
        clients of earlier releases able to read the job; the reason says it was a cancel."""
        return self._finish(JobState.KILLED, now, CANCELLED_BY_TEMPORAL)

    def plan_hold(self, hold: PlanHold, now: datetime) -> list[Effect]:
        if self.finished:
            return []
        if hold.kill:
            return self._finish(JobState.KILLED, now, f"plan {self.plan}: {hold.reason or 'plan budget exceeded'}")
        if hold.hold:
            self.s.plan_hold = hold.reason or "plan budget exceeded"
            return self._pause(now, f"plan {self.plan}: {self.s.plan_hold}")
        was_held = self.s.plan_hold is not None
        self.s.plan_hold = None
        if was_held and self.paused and not self.s.budget.exceeded:
            return self._unpause("resumed with its plan")
        return []
