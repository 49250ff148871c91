"""The job book: every governance rule, pure, without Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from jobgov.configfile import parse_plan_config
from jobgov.domain.asks import (
    Action,
    Category,
    Decision,
    NormalizedAsk,
    Operation,
    PermissionAsk,
)
from jobgov.domain.items import AskItem, RepliedItem, SessionItem, StepItem
from jobgov.domain.usage import CostRecord, StepUsage, TokenCounts
from jobgov.temporal.payloads import (
    ApproveInput,
    DenyInput,
    EndInput,
    EventBatch,
    KillInput,
    PlanHold,
    ResumeInput,
)
from jobgov.temporal.state import JobCarry, JobState
from jobgov.temporal.workflows.book import JobBook
from jobgov.temporal.workflows.effects import (
    Abort,
    DecisionRejected,
    Notify,
    Prompt,
    Reply,
    ReportToPlan,
    RestartStream,
)
from jobgov.temporal.workflows.support import refresh_wake

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

CONFIG = """
budget:
  job: {usd: 1.0, warn_at: [0.5, 0.9], on_exceed: pause}
approvals: {timeout: 10m}
"""


def book(yaml: str = CONFIG) -> JobBook:
    b = JobBook(plan="p", job="j", workflow_id="wf", agent_url="http://agent", worktree="/w",
                config=parse_plan_config(yaml), carry=JobCarry())
    b.started("ses_1", prompt_sent=True)
    return b


def ask_item(ask_id: str, category: Category = Category.SHELL_COMMAND, inside: bool = True,
             subject: str = "ls", auto: Action | None = None, stale: bool = False) -> AskItem:
    request = PermissionAsk(id=ask_id, sessionID="ses_1", permission="bash", patterns=[subject],
                            metadata={"command": subject})
    normalized = NormalizedAsk(ask=request, worktree="/w",
                               operations=[Operation(category=category, inside=inside, subject=subject)])
    decision = Decision(action=auto, category=category, reason="r", subject=subject) if auto else None
    return AskItem(ask=normalized, auto=decision, stale=stale)


def step_item(part: str, usd: str, tokens: int = 100) -> StepItem:
    step = StepUsage(part_id=part, message_id="m" + part, session_id="ses_1", provider_id="fake", model_id="m",
                     tokens=TokenCounts(input=tokens))
    return StepItem(step=step, cost=CostRecord(part_id=part, session_id="ses_1", usd=Decimal(usd), source="override"))


def batch(*items: object) -> EventBatch:
    return EventBatch(generation=0, items=list(items))  # type: ignore[arg-type]


def test_auto_decisions_from_the_activity_are_recorded_without_effects() -> None:
    b = book()
    effects = b.on_batch(batch(ask_item("a1", auto=Action.AUTO_APPROVE)), T0)
    assert effects == []
    assert [(d.request_id, d.action, d.actor, d.reply) for d in b.s.decisions] == [("a1", "auto-approve", "policy", "once")]
    # The same ask again (reconnect, duplicate) changes nothing.
    assert b.on_batch(batch(ask_item("a1", auto=Action.AUTO_APPROVE)), T0) == []
    assert len(b.s.decisions) == 1


def test_an_automatic_decision_whose_reply_did_not_go_out_is_recorded_so() -> None:
    """The audit trail never says "once" for an ask the agent was not answered (``not_sent``)."""
    why = "the run ended before the reply went out (a late reply can restart an aborted tool)"
    b = book()
    unsent = ask_item("a1", auto=Action.AUTO_APPROVE).model_copy(update={"not_sent": why})
    assert b.on_batch(batch(unsent), T0) == []  # no late reply either
    [record] = b.s.decisions
    assert (record.request_id, record.action, record.reply, record.actor) == ("a1", "cancelled", None, "policy")
    assert record.message == f"decided auto-approve by the policy; no reply sent: {why}"
    assert b.is_decided("a1") and not b.s.pending
    # An ask recorded already keeps its record: a reply may have gone out from elsewhere.
    b.on_batch(batch(ask_item("a2", auto=Action.AUTO_APPROVE)), T0)
    assert b.on_batch(batch(ask_item("a2", auto=Action.AUTO_APPROVE).model_copy(update={"not_sent": "x"})), T0) == []
    b.on_batch(batch(ask_item("a3", category=Category.INSTALL_PACKAGES)), T0)
    b.approve(ApproveInput(request_id="a3", by="ann"), T0)
    b.on_batch(batch(ask_item("a3", auto=Action.AUTO_APPROVE).model_copy(update={"not_sent": "x"})), T0)
    assert [(d.request_id, d.action, d.reply, d.actor) for d in b.s.decisions] == [
        ("a1", "cancelled", None, "policy"), ("a2", "auto-approve", "once", "policy"), ("a3", "approve", "once", "ann")]
    # A denial not sent says so too.
    b.on_batch(batch(ask_item("a4", auto=Action.DENY).model_copy(update={"not_sent": "refused"})), T0)
    assert b.s.decisions[-1].message == "decided deny by the policy; no reply sent: refused"


def test_recheck_flags_a_disagreement() -> None:
    b = book()
    b.on_batch(batch(ask_item("a1", inside=False, subject="cat /etc/x", auto=Action.AUTO_APPROVE)), T0)
    assert any("re-check of a1" in w for w in b.s.warnings)


def test_ask_user_waits_and_is_approved_once() -> None:
    b = book()
    effects = b.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES, subject="npm i x")), T0)
    assert [type(e) for e in effects] == [Notify]
    assert b.display_state() is JobState.AWAITING_APPROVAL
    assert b.next_deadline() == T0 + timedelta(minutes=10)
    record, effects = b.approve(ApproveInput(request_id="a1", by="ann"), T0)
    assert effects == [Reply("a1", "once")]
    assert (record.action, record.actor) == ("approve", "ann")
    assert b.display_state() is JobState.RUNNING
    with pytest.raises(DecisionRejected, match="already decided"):
        b.validate_decision("a1")
    with pytest.raises(DecisionRejected, match="no pending ask nope"):
        b.validate_decision("nope")


def test_always_is_a_job_scoped_grant_of_the_exact_request() -> None:
    b = book()
    b.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES, subject="npm i x"),
                     ask_item("a2", category=Category.INSTALL_PACKAGES, subject="npm i x")), T0)
    _, effects = b.approve(ApproveInput(request_id="a1", always=True, by="ann"), T0)
    # The reply is "once" (opencode's broad `always` patterns are never forwarded); a2 matches the grant.
    assert effects == [Reply("a1", "once"), Reply("a2", "once")]
    assert b.on_batch(batch(ask_item("a3", category=Category.INSTALL_PACKAGES, subject="npm i x")), T0) == [Reply("a3", "once")]
    assert [d.action for d in b.s.decisions] == ["approve-always", "grant", "grant"]
    # A different pattern is not granted.
    assert [type(e) for e in b.on_batch(batch(ask_item("a4", category=Category.INSTALL_PACKAGES, subject="npm i y")), T0)] == [Notify]


def test_deny_sends_the_message() -> None:
    b = book()
    b.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES)), T0)
    record, effects = b.deny(DenyInput(request_id="a1", by="bob", reason="use the vendored copy"), T0)
    assert effects == [Reply("a1", "reject", "use the vendored copy")]
    assert (record.action, record.message) == ("deny", "use the vendored copy")


def test_policy_deny_in_the_workflow_replies_with_reason() -> None:
    b = book()
    effects = b.on_batch(batch(ask_item("a1", inside=False, subject="rm -rf /")), T0)
    assert len(effects) == 1 and isinstance(effects[0], Reply)
    assert effects[0].reply == "reject" and "Denied by jobgov policy" in (effects[0].message or "")


def test_timeout_fails_closed() -> None:
    b = book()
    b.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES)), T0)
    assert b.expire(T0 + timedelta(minutes=9)) == []
    effects = b.expire(T0 + timedelta(minutes=10))
    assert len(effects) == 1 and isinstance(effects[0], Reply) and effects[0].reply == "reject"
    assert b.s.decisions[-1].action == "timeout"
    killer = book("approvals: {timeout: 1m, on_timeout: kill}\n")
    killer.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES)), T0)
    killer.expire(T0 + timedelta(minutes=1))
    assert killer.s.state is JobState.KILLED


def test_usage_counts_once_and_warns_once_per_threshold() -> None:
    b = book()
    effects = b.on_batch(batch(step_item("p1", "0.3"), step_item("p1", "0.3"), step_item("p2", "0.3")), T0)
    assert b.s.steps == 2 and b.s.cost_usd == Decimal("0.6") and b.s.tokens.total == 200
    warnings = [e for e in effects if isinstance(e, Notify) and e.kind == "budget-warning"]
    assert len(warnings) == 1 and "50%" in warnings[0].message
    assert ReportToPlan() in effects


def test_exceeding_pauses_cancels_pending_and_resume_needs_room() -> None:
    b = book()
    b.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES)), T0)
    effects = b.on_batch(batch(step_item("p1", "1.2")), T0)
    assert b.s.state is JobState.PAUSED and b.holding
    assert Abort() in effects and Reply("a1", "reject") in effects and RestartStream() in effects
    assert b.s.decisions[-1].action == "cancelled"
    # An ask arriving while paused is never approved, even if the policy would.
    assert b.on_batch(batch(ask_item("a2")), T0) == [Reply("a2", "reject")]
    # The rejection says what is spent against which limit, and what to add.
    with pytest.raises(DecisionRejected) as rejected:
        b.validate_resume(ResumeInput())
    assert str(rejected.value) == ('the job budget is still spent (1.2 of its 1 USD spent): '
                                   'resume with at least {"add_usd": 0.21}')
    b.validate_resume(ResumeInput(add_usd=0.21))  # that is indeed enough
    effects = b.resume(ResumeInput(add_usd=1.0, by="ann"), T0)
    assert b.s.state is JobState.RUNNING and not b.holding
    assert RestartStream() in effects and any(isinstance(e, Prompt) for e in effects)
    with pytest.raises(DecisionRejected, match="not paused"):
        b.validate_resume(ResumeInput())


def test_kill_on_exceed() -> None:
    b = book("budget:\n  job: {tokens: 100, on_exceed: kill}\n")
    effects = b.on_batch(batch(step_item("p1", "0", tokens=150)), T0)
    assert b.s.state is JobState.KILLED and Abort() in effects


def test_notify_on_exceed_does_not_hold() -> None:
    b = book("budget:\n  job: {usd: 0.1, on_exceed: notify}\n")
    b.on_batch(batch(step_item("p1", "0.5")), T0)
    assert b.s.state is JobState.RUNNING and not b.holding


def test_abort_cancels_pending_asks_and_stale_asks_are_never_approved() -> None:
    b = book()
    b.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES)), T0)
    effects = b.on_batch(batch(SessionItem(status="aborted")), T0)
    assert effects == [Reply("a1", "reject")]
    with pytest.raises(DecisionRejected):
        b.validate_decision("a1")
    assert b.on_batch(batch(ask_item("a9", stale=True)), T0) == [Reply("a9", "reject")]
    assert b.s.decisions[-1].action == "cancelled"


def test_idle_after_work_completes_and_error_fails() -> None:
    b = book()
    effects = b.on_batch(batch(SessionItem(status="busy"), SessionItem(status="idle")), T0)
    assert b.s.state is JobState.COMPLETED and ReportToPlan() in effects
    f = book()
    f.on_batch(batch(SessionItem(status="error", message="APIError: bad request"), SessionItem(status="idle")), T0)
    assert f.s.state is JobState.FAILED and f.s.error == "APIError: bad request"


def test_idle_while_paused_does_not_complete() -> None:
    b = book()
    b.on_batch(batch(step_item("p1", "2")), T0)
    b.on_batch(batch(SessionItem(status="aborted"), SessionItem(status="idle")), T0)
    assert b.s.state is JobState.PAUSED


def test_replied_elsewhere_removes_the_pending_ask() -> None:
    b = book()
    b.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES)), T0)
    b.on_batch(batch(RepliedItem(request_id="a1", reply="always")), T0)
    assert not b.s.pending and b.s.decisions[-1].actor == "opencode"


def test_plan_hold_and_release() -> None:
    b = book()
    effects = b.on_batch(batch(), T0) + b.plan_hold(PlanHold(hold=True, reason="plan budget exceeded"), T0)
    assert b.s.state is JobState.PAUSED and Abort() in effects
    with pytest.raises(DecisionRejected, match="resume the plan"):
        b.validate_resume(ResumeInput())
    effects = b.plan_hold(PlanHold(hold=False), T0)
    assert b.s.state is JobState.RUNNING and any(isinstance(e, Prompt) for e in effects)


def test_kill() -> None:
    b = book()
    effects = b.kill(KillInput(by="ann"), T0)
    assert b.s.state is JobState.KILLED and effects[0] == Abort()
    with pytest.raises(DecisionRejected, match="already killed"):
        b.validate_kill()


def test_status_shape() -> None:
    b = book()
    b.on_batch(batch(step_item("p1", "0.25"), ask_item("a1", category=Category.INSTALL_PACKAGES)), T0)
    status = b.status().model_dump(mode="json")
    assert status["state"] == "awaiting-approval"
    assert set(status["tokens"]) == {"input", "output", "reasoning", "cache_read", "cache_write", "total"}
    assert status["cost_usd"] == 0.25
    assert status["pending"][0]["id"] == "a1" and status["pending"][0]["category"] == "install_packages"
    assert status["budget"]["spent_usd"] == 0.25
    assert "Pending asks" in b.details_markdown()


def test_a_repriced_step_counts_the_difference_only() -> None:
    b = book()
    b.on_batch(batch(step_item("p1", "0.1")), T0)
    b.on_batch(batch(step_item("p1", "0.3")), T0)
    assert (b.s.steps, b.s.cost_usd, b.s.tokens.total) == (1, Decimal("0.3"), 100)


def test_no_step_is_kept_in_state_or_carried() -> None:
    """From 0.10: the counts and totals are all a job keeps of its steps (each is in history)."""
    b = book()
    b.on_batch(batch(step_item("p1", "0.1"), step_item("p2", "0.2")), T0)
    b.on_batch(batch(step_item("p1", "0.3")), T0)
    assert (b.s.steps, b.s.cost_usd, b.s.counted) == (2, Decimal("0.5"), {"p1": Decimal("0.3"), "p2": Decimal("0.2")})
    assert b.s.recent_steps == [] and b.compacted().recent_steps == []


def test_an_idle_before_any_work_does_not_end_the_job() -> None:
    """The stream's first reconcile can report "idle" just as the prompt is sent."""
    b = book()
    assert b.on_batch(batch(SessionItem(status="idle"), SessionItem(status="connected")), T0) == []
    assert b.s.state is JobState.RUNNING
    b.on_batch(batch(step_item("p1", "0.01"), SessionItem(status="idle")), T0)
    assert b.s.state is JobState.COMPLETED


def _id(prefix: str, n: int) -> str:
    """An opencode-shaped id: ``prt_``, a fixed-width hex clock, then random-looking text."""
    return f"{prefix}_{n:012x}Ab3dEf6hIj7kLm"


def test_a_long_job_carries_bounded_state_and_never_counts_twice() -> None:
    b = book("approvals: {timeout: 10m}\n")
    for n in range(3000):
        b.on_batch(batch(step_item(_id("prt", n), "0.001", tokens=10),
                         ask_item(_id("per", n), auto=Action.AUTO_APPROVE)), T0)
    b.on_batch(batch(ask_item(_id("per", 3000), category=Category.INSTALL_PACKAGES, subject="npm i x")), T0)
    for n in range(200):
        b.warn(f"warning {n}")
    assert b.s.steps == 3000 and b.s.tokens.total == 30000
    carry = b.compacted()
    assert len(carry.model_dump_json()) < 64 * 1024
    assert len(carry.counted) <= 256 and len(carry.decided) <= 256 + 1 and len(carry.warnings) <= 20

    # The next run of the job, fed everything again (a reconnect re-reads every step and pending ask).
    nxt = JobBook(plan="p", job="j", workflow_id="wf", agent_url="http://agent", worktree="/w",
                  config=parse_plan_config("approvals: {timeout: 10m}\n"), carry=carry)
    for n in range(3000):
        assert nxt.on_batch(batch(step_item(_id("prt", n), "0.001", tokens=10),
                                  ask_item(_id("per", n), auto=Action.AUTO_APPROVE)), T0) == []
    assert (nxt.s.steps, nxt.s.tokens.total, nxt.s.cost_usd) == (3000, 30000, Decimal("3.000"))
    # The ask still pending was not put under the watermark: a person can still decide it.
    assert _id("per", 3000) in nxt.s.pending and not nxt.is_decided(_id("per", 3000))
    nxt.validate_decision(_id("per", 3000))
    # New steps and asks count as before.
    nxt.on_batch(batch(step_item(_id("prt", 3001), "0.5", tokens=7)), T0)
    assert (nxt.s.steps, nxt.s.tokens.total) == (3001, 30007)
    assert nxt.on_batch(batch(ask_item(_id("per", 3002))), T0) == [Reply(_id("per", 3002), "once")]


def test_a_re_priced_recent_step_still_counts_by_the_difference_after_continue_as_new() -> None:
    b = book("")
    b.on_batch(batch(step_item(_id("prt", 1), "0.10")), T0)
    nxt = JobBook(plan="p", job="j", workflow_id="wf", agent_url="http://agent", worktree="/w",
                  config=parse_plan_config(""), carry=b.compacted())
    nxt.on_batch(batch(step_item(_id("prt", 1), "0.25")), T0)
    assert (nxt.s.steps, nxt.s.cost_usd) == (1, Decimal("0.25"))


def test_one_step_past_several_thresholds_says_so_once() -> None:
    b = book()
    b.grouped_warnings = True  # what runs from 0.3 on do (workflow.patched)
    effects = b.on_batch(batch(step_item("p1", "0.95")), T0)
    warnings = [e.message for e in effects if isinstance(e, Notify) and e.kind == "budget-warning"]
    assert warnings == ["job j reached 50% and 90% of its usd budget at once (0.95 of 1)"]
    old = book()  # a run recorded before 0.3 replays with one warning per threshold
    effects = old.on_batch(batch(step_item("p1", "0.95")), T0)
    assert len([e for e in effects if isinstance(e, Notify) and e.kind == "budget-warning"]) == 2


def test_an_unreachable_agent_is_shown_and_notified_after_the_grace_period() -> None:
    from datetime import timedelta

    from jobgov.temporal.state import AgentReach

    b = book(CONFIG + "agent: {unreachable_notify_after: 30s}\n")
    lost = AgentReach(reachable=False, since=T0, error="ConnectError: refused")
    assert b.on_agent(lost, T0 + timedelta(seconds=5)) == []
    assert b.status().agent == lost and "**Agent unreachable** since" in b.details_markdown()
    assert b.next_deadline() == T0 + timedelta(seconds=30)
    assert b.expire(T0 + timedelta(seconds=29)) == []
    [notice] = b.expire(T0 + timedelta(seconds=30))
    assert isinstance(notice, Notify) and notice.kind == "agent-unreachable" and "since" in notice.message
    assert b.next_deadline() is None and b.expire(T0 + timedelta(seconds=90)) == []  # once per outage
    assert b.on_agent(lost, T0 + timedelta(seconds=40)) == []  # a repeated report changes nothing
    [back] = b.on_agent(AgentReach(reachable=True, since=T0 + timedelta(seconds=50)), T0 + timedelta(seconds=50))
    assert isinstance(back, Notify) and "reachable again" in back.message
    assert b.status().agent is not None and b.status().agent.reachable
    assert "Agent unreachable" not in b.details_markdown()


def test_details_write_amounts_without_a_dollar_sign() -> None:
    """The Temporal UI reads a bare dollar sign in the details as the start of a formula."""
    b = book()
    b.on_batch(batch(step_item("p1", "0.3")), T0)
    assert "$" not in b.details_markdown() and "0.3000 USD" in b.details_markdown()


def test_an_unfinished_run_is_continued_then_failed_never_completed() -> None:
    b = book(CONFIG + "agent: {max_continues: 1}\n")
    b.interrupt_aware = True  # what runs from 0.3 on do (workflow.patched)
    b.on_batch(batch(SessionItem(status="busy")), T0)
    effects = b.on_batch(batch(SessionItem(status="idle", unfinished="the agent restarted")), T0)
    assert b.s.state is JobState.RUNNING and b.s.continues == 1
    assert Prompt(b.config.agent.continue_prompt) in effects and "sent continue 1 of 1" in b.s.warnings[-1]
    b.on_batch(batch(SessionItem(status="busy")), T0)
    b.on_batch(batch(SessionItem(status="idle", unfinished="the agent restarted")), T0)
    assert b.s.state is JobState.FAILED
    assert b.s.error == "the run ended unfinished after 1 continue: the agent restarted"
    old = book()  # a run recorded before 0.3 replays as it ran: completed
    old.on_batch(batch(SessionItem(status="busy")), T0)
    old.on_batch(batch(SessionItem(status="idle", unfinished="the agent restarted")), T0)
    assert old.s.state is JobState.COMPLETED


def test_a_queued_job_shows_queued_with_the_reason_until_it_is_not() -> None:
    b = book()
    b.queued = "no worker has taken its event stream"
    assert b.display_state() is JobState.QUEUED and b.status().queued == b.queued
    assert b.details_markdown().startswith("**queued**")
    assert "**Queued**: no worker has taken its event stream" in b.details_markdown()
    assert b.next_report().state is JobState.QUEUED
    b.queued = None
    assert b.display_state() is JobState.RUNNING and b.status().queued is None


def test_a_queued_job_that_ends_shows_how_it_ended() -> None:
    b = book()
    b.queued = "no worker has taken its event stream"
    b.kill(KillInput(by="ann"), T0)
    assert b.display_state() is JobState.KILLED


@pytest.mark.parametrize(("release_0_4", "action"), [(True, "killed"), (False, "cancelled")])
def test_asks_a_kill_ends_are_recorded_killed_from_0_4(release_0_4: bool, action: str) -> None:
    b = book()
    b.release_0_4 = release_0_4  # runs recorded before 0.4 replay with "cancelled"
    b.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES)), T0)
    b.kill(KillInput(by="ann"), T0)
    assert [(d.request_id, d.action, d.reply) for d in b.s.decisions] == [("a1", action, "reject")]


def test_asks_a_pause_ends_stay_cancelled() -> None:
    b = book()
    b.release_0_4 = True
    b.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES)), T0)
    b.plan_hold(PlanHold(hold=True, reason="plan budget"), T0)
    assert [d.action for d in b.s.decisions] == ["cancelled"]


def test_an_unreachable_agent_shows_in_the_state_from_0_4() -> None:
    from jobgov.temporal.state import AgentReach

    b = book()
    lost = AgentReach(reachable=False, since=T0, error="ConnectError: refused")
    b.on_agent(lost, T0)
    assert b.display_state() is JobState.RUNNING  # a run recorded before 0.4
    b.release_0_4 = True
    assert b.display_state() is JobState.AGENT_UNREACHABLE and b.next_report().state is JobState.AGENT_UNREACHABLE
    b.on_agent(AgentReach(reachable=True, since=T0 + timedelta(seconds=9)), T0 + timedelta(seconds=9))
    assert b.display_state() is JobState.RUNNING


def test_a_refused_signal_is_kept_with_why_and_changes_nothing_else() -> None:
    b = book()
    b.on_batch(batch(ask_item("a1", category=Category.INSTALL_PACKAGES)), T0)
    before = b.status().model_dump(exclude={"refused"})
    for n in range(25):
        b.refuse("approve", f"per_{n}", "ann", f"no pending ask per_{n} in job j", T0)
    assert b.status().model_dump(exclude={"refused"}) == before
    assert len(b.s.refused) == 20 and b.s.refused[-1].request_id == "per_24"  # the newest are kept
    assert "Refused signal: approve per_24 by ann" in b.details_markdown()


def owned_book() -> JobBook:
    b = JobBook(plan="p", job="j", workflow_id="wf", agent_url="http://agent", worktree="/w",
                config=parse_plan_config(CONFIG), carry=JobCarry(), owner="mission-control")
    b.interrupt_aware = True
    b.started("ses_1", prompt_sent=False)
    return b


def test_an_owned_job_outlives_its_idle_and_ends_as_its_owner_says() -> None:
    b = owned_book()
    pending = ask_item("a1", category=Category.INSTALL_PACKAGES, subject="npm i x")
    b.on_batch(batch(SessionItem(status="busy"), pending), T0)
    # The idle ends the run, not the job: its ask is rejected, no continue prompt, still governed.
    effects = b.on_batch(batch(SessionItem(status="idle", unfinished="the agent restarted")), T0)
    assert effects == [Reply("a1", "reject")] and b.s.state is JobState.RUNNING
    assert b.s.error is None and "the agent restarted" in b.s.warnings[-1] and "mission-control" in b.s.warnings[-1]
    # The owner prompts again: the next run's ask is judged as usual.
    assert [type(e) for e in b.on_batch(batch(SessionItem(status="busy"), ask_item("a2", category=Category.INSTALL_PACKAGES, subject="npm i y")), T0)] == [Notify]
    # The owner saw the run end before the job did: it ends when the run's idle (and last step) arrive.
    assert b.end(EndInput(outcome="completed", by="mission-control", reason="marked completed"), T0) == []
    assert b.s.state is JobState.RUNNING and b.next_deadline() == T0 + timedelta(seconds=15)
    assert "Ending: mission-control: marked completed" in b.details_markdown()
    b.on_batch(batch(step_item("p1", "0.01")), T0)
    effects = b.on_batch(batch(SessionItem(status="idle")), T0)
    assert b.s.state is JobState.COMPLETED and Reply("a2", "reject") in effects and Abort() not in effects
    assert (b.s.steps, b.s.ended, b.s.ending) == (1, "mission-control: marked completed", None)
    assert b.status().owner == "mission-control"
    with pytest.raises(DecisionRejected, match="already completed"):
        b.validate_end(EndInput(outcome="stopped"))


@pytest.mark.parametrize(("outcome", "state"), [("failed", JobState.FAILED), ("stopped", JobState.KILLED)])
def test_an_owner_ends_a_job_failed_or_stopped(outcome: str, state: JobState) -> None:
    b = owned_book()
    effects = b.end(EndInput(outcome=outcome, by="mission-control", reason=f"marked {outcome}"), T0)  # type: ignore[arg-type]
    assert b.s.state is state
    assert (Abort() in effects) is (state is JobState.KILLED)  # a stopped job's run is aborted
    assert (b.s.error == "mission-control: marked failed") is (outcome == "failed")


def test_only_an_owned_job_can_be_ended() -> None:
    b = book()
    with pytest.raises(DecisionRejected, match="no owner"):
        b.validate_end(EndInput(outcome="completed"))
    b.on_batch(batch(SessionItem(status="busy"), SessionItem(status="idle")), T0)
    assert b.s.state is JobState.COMPLETED  # without an owner the idle after its work ends the job


def test_an_owners_end_does_not_wait_forever_for_the_idle() -> None:
    b = owned_book()
    b.on_batch(batch(SessionItem(status="busy")), T0)
    assert b.end(EndInput(outcome="failed", by="mission-control"), T0) == []
    assert b.expire(T0 + timedelta(seconds=14)) == [] and not b.finished
    b.expire(T0 + timedelta(seconds=15))
    assert (b.s.state, b.s.error) == (JobState.FAILED, "mission-control: the job failed")


def test_the_refresh_timer_wakes_one_interval_after_the_earliest_refresh_due() -> None:
    slack = timedelta(seconds=5)
    assert refresh_wake([], slack) is None  # nothing held back: no timer
    assert refresh_wake([T0 + timedelta(seconds=30), T0 + timedelta(seconds=5)], slack) == T0 + timedelta(seconds=10)


def test_a_collected_record_the_stream_then_delivers_unapplied_is_decided_anew() -> None:
    """collect_stream runs after the stream's cancel was requested (0.9): a record it reads may
    have been answered "cancelled", and then the stream delivers that ask unapplied."""
    b = book()
    assert b.on_collected(batch(ask_item("a1", auto=Action.AUTO_APPROVE), ask_item("a2", auto=Action.AUTO_APPROVE)),
                          T0) == []
    assert [(d.request_id, d.collected) for d in b.s.decisions] == [("a1", True), ("a2", True)]
    # a1 comes back unapplied: no reply went out, so the workflow decides it and replies.
    assert b.on_batch(batch(ask_item("a1")), T0) == [Reply("a1", "once", None)]
    assert [(d.request_id, d.action, d.reply, d.collected) for d in b.s.decisions] == [
        ("a2", "auto-approve", "once", True), ("a1", "auto-approve", "once", False)]
    # Once decided by the workflow, a repeat changes nothing; nor does anything for a record not collected.
    assert b.on_batch(batch(ask_item("a1")), T0) == []
    b.on_batch(batch(ask_item("a3", auto=Action.AUTO_APPROVE)), T0)
    assert b.on_batch(batch(ask_item("a3")), T0) == []
    assert [d.request_id for d in b.s.decisions] == ["a2", "a1", "a3"]
    # A job that has ended rejects it instead (never a late "once").
    b.kill(KillInput(by="ann"), T0)
    effects = b.on_batch(batch(ask_item("a2")), T0)
    assert Reply("a2", "reject") in effects
    assert [(d.action, d.reply) for d in b.s.decisions if d.request_id == "a2"] == [("cancelled", "reject")]
