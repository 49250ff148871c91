"""Budget rules: limits in USD and tokens, warnings on the way, an action at the limit.

Everything here is pure and deterministic (no clock, no I/O), so a workflow
can run it directly. :func:`apply` adds spending to a :class:`BudgetState` and
reports what newly happened; :func:`raise_limit` gives a job more room.

Rules:

* Each warning threshold fires at most once per dimension (USD, tokens), when
  spending reaches ``threshold * limit``. A single large step that jumps past
  several thresholds fires all of them at once.
* The limit is *exceeded* when spending reaches it (``spent >= limit``):
  having spent the whole budget, the next model call would overspend, so the
  job is stopped before it is made. Exceeding is reported once; the action is
  the limit's ``on_exceed``.
* Only :func:`raise_limit` re-arms warnings and clears the exceeded flag;
  spending that goes down (a step re-priced cheaper) does neither.
* No limit (``None``, or neither ``usd`` nor ``tokens``) means no budget.
"""

from __future__ import annotations

from decimal import ROUND_UP, Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

#: What to do when a limit is reached.
OnExceed = Literal["pause", "notify", "kill"]
#: What follows a spending update: nothing, a notification, or the limit's action.
BudgetAction = Literal["continue", "notify", "pause", "kill"]
#: The two things a budget limits.
Dimension = Literal["usd", "tokens"]
_DIMENSIONS: tuple[Dimension, ...] = ("usd", "tokens")


def _thresholds(values: list[float]) -> list[float]:
    for value in values:
        if not 0 < value < 1:
            raise ValueError(f"warning threshold {value} must be between 0 and 1 (exclusive), e.g. 0.8")
    return sorted(set(values))


#: Fractions of a limit at which to warn; sorted and deduplicated on load.
Thresholds = Annotated[list[float], AfterValidator(_thresholds)]
_Usd = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_Tokens = Annotated[int, Field(gt=0)]


class BudgetLimit(BaseModel):
    """A spending limit: USD, tokens, or both."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    usd: _Usd | None = None
    """The most the job (or plan) may cost, in USD; no USD limit when omitted."""
    tokens: _Tokens | None = None
    """The most tokens (all kinds added up) it may use; no token limit when omitted."""
    warn_at: Thresholds = [0.5, 0.75, 0.9]
    """Fractions of each limit at which to send a warning, each once."""
    on_exceed: OnExceed = "pause"
    """What to do when a limit is reached: pause for a person, only notify, or kill the job."""

    @property
    def is_limited(self) -> bool:
        """Whether any dimension is limited."""
        return self.usd is not None or self.tokens is not None


class BudgetLimitOverride(BaseModel):
    """A per-job change to the job limit; only the keys given replace the job's.

    ``usd: null`` (or ``tokens: null``) removes that limit for the job.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    usd: _Usd | None = None
    tokens: _Tokens | None = None
    warn_at: Thresholds = []
    on_exceed: OnExceed = "pause"

    def over(self, base: BudgetLimit) -> BudgetLimit:
        """Merge the keys this override sets over ``base``."""
        return base.model_copy(update=self.model_dump(include=self.model_fields_set))


class BudgetConfig(BaseModel):
    """The ``budget:`` section of a plan config."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job: BudgetLimit | None = None
    """The limit of each job of the plan."""
    plan: BudgetLimit | None = None
    """The limit of all the plan's jobs together."""
    jobs: dict[str, BudgetLimitOverride] = {}
    """Per-job overrides by job name, merged key by key over ``job``."""

    def for_job(self, name: str | None) -> BudgetLimit | None:
        """The effective limit of job ``name`` (``None``: no limit)."""
        override = self.jobs.get(name) if name is not None else None
        limit = self.job
        if override is not None:
            limit = override.over(limit or BudgetLimit())
        return limit if limit is not None and limit.is_limited else None


class BudgetWarning(BaseModel):
    """A warning threshold newly reached."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dimension: Dimension
    threshold: float
    spent: float
    """Spending in that dimension when it fired (for messages only; the state is exact)."""
    limit: float


def warning_texts(subject: str, warnings: list[BudgetWarning], *, grouped: bool = True) -> list[str]:
    """What to tell people about ``warnings``: one line per dimension, naming every threshold one
    update crossed at once (``grouped=False``: one line per threshold, as releases before 0.3 did).

    >>> w = [BudgetWarning(dimension="usd", threshold=t, spent=0.95, limit=1.0) for t in (0.5, 0.75, 0.9)]
    >>> warning_texts("job a", w)
    ['job a reached 50%, 75% and 90% of its usd budget at once (0.95 of 1)']
    """
    if not grouped:
        return [f"{subject} reached {w.threshold:.0%} of its {w.dimension} budget ({w.spent:g} of {w.limit:g})"
                for w in warnings]
    texts = []
    for dimension in dict.fromkeys(w.dimension for w in warnings):
        mine = [w for w in warnings if w.dimension == dimension]
        shares = [f"{w.threshold:.0%}" for w in mine]
        crossed = shares[0] if len(shares) == 1 else f"{', '.join(shares[:-1])} and {shares[-1]}"
        at_once = " at once" if len(shares) > 1 else ""
        last = mine[-1]
        texts.append(f"{subject} reached {crossed} of its {dimension} budget{at_once} "
                     f"({last.spent:g} of {last.limit:g})")
    return texts


class BudgetOutcome(BaseModel):
    """What one spending update newly caused."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    warnings: list[BudgetWarning] = []
    """Thresholds crossed by this update, by dimension then threshold."""
    exceeded: bool = False
    """This update reached the limit (reported once)."""
    exceeded_dimensions: list[Dimension] = []
    """The dimensions at or over their limit when it was newly exceeded."""
    action: BudgetAction = "continue"
    """``on_exceed`` when newly exceeded, ``notify`` for warnings only, else ``continue``."""


class BudgetState(BaseModel):
    """Spending against one limit, and what has already been reported."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: BudgetLimit | None = None
    spent_usd: Decimal = Field(default=Decimal(0), ge=0, allow_inf_nan=False)
    """Exact USD spent so far."""
    spent_tokens: int = Field(default=0, ge=0)
    warned_usd: list[float] = []
    """USD thresholds already reported."""
    warned_tokens: list[float] = []
    """Token thresholds already reported."""
    exceeded: bool = False
    """The limit has been reached and not raised since."""


def _to_decimal(value: Decimal | float | int) -> Decimal:
    # repr() gives a float's shortest form: 0.1 stays 0.1, not its binary expansion.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _limits(limit: BudgetLimit) -> dict[Dimension, Decimal]:
    limits: dict[Dimension, Decimal] = {}
    if limit.usd is not None:
        limits["usd"] = _to_decimal(limit.usd)
    if limit.tokens is not None:
        limits["tokens"] = Decimal(limit.tokens)
    return limits


def _spent(state: BudgetState, dimension: Dimension) -> Decimal:
    return state.spent_usd if dimension == "usd" else Decimal(state.spent_tokens)


def _warned(state: BudgetState, dimension: Dimension) -> list[float]:
    return state.warned_usd if dimension == "usd" else state.warned_tokens


def _reached(spent: Decimal, limit: Decimal, threshold: float = 1.0) -> bool:
    return spent >= _to_decimal(threshold) * limit


def apply(
    state: BudgetState, delta_usd: Decimal | float | int, delta_tokens: int
) -> tuple[BudgetState, BudgetOutcome]:
    """Add spending to a budget.

    Args:
        state: The budget before the update.
        delta_usd: USD spent since (may be negative when a step is re-priced lower).
        delta_tokens: Tokens used since.

    Returns:
        The new state and what newly happened: warnings crossed, whether the
        limit was newly reached, and the action that follows.
    """
    spent = state.model_copy(
        update={
            "spent_usd": max(Decimal(0), state.spent_usd + _to_decimal(delta_usd)),
            "spent_tokens": max(0, state.spent_tokens + delta_tokens),
        }
    )
    if state.limit is None:
        return spent, BudgetOutcome()
    warnings: list[BudgetWarning] = []
    warned: dict[Dimension, list[float]] = {"usd": list(state.warned_usd), "tokens": list(state.warned_tokens)}
    over: list[Dimension] = []
    for dimension, limit in _limits(state.limit).items():
        used = _spent(spent, dimension)
        for threshold in state.limit.warn_at:
            if threshold not in warned[dimension] and _reached(used, limit, threshold):
                warned[dimension].append(threshold)
                warnings.append(
                    BudgetWarning(dimension=dimension, threshold=threshold, spent=float(used), limit=float(limit))
                )
        if _reached(used, limit):
            over.append(dimension)
    newly_exceeded = bool(over) and not state.exceeded
    new_state = spent.model_copy(
        update={
            "warned_usd": sorted(warned["usd"]),
            "warned_tokens": sorted(warned["tokens"]),
            "exceeded": state.exceeded or newly_exceeded,
        }
    )
    action: BudgetAction = "continue"
    if newly_exceeded:
        action = state.limit.on_exceed
    elif warnings:
        action = "notify"
    return new_state, BudgetOutcome(
        warnings=warnings,
        exceeded=newly_exceeded,
        exceeded_dimensions=over if newly_exceeded else [],
        action=action,
    )


def crossed(before: BudgetState | None, after: BudgetState | None) -> bool:
    """``after`` reached a warning threshold or the limit that ``before`` had not."""
    if after is None:
        return False
    if before is None:
        return bool(after.warned_usd or after.warned_tokens or after.exceeded)
    return (after.exceeded and not before.exceeded) or not (
        set(after.warned_usd) <= set(before.warned_usd) and set(after.warned_tokens) <= set(before.warned_tokens))


def raise_limit(state: BudgetState, add_usd: float | None = None, add_tokens: int | None = None) -> BudgetState:
    """Give a budget more room.

    Warnings above the new usage ratio are re-armed (they fire again when
    reached), and the exceeded flag is cleared if spending is now under every
    limit.

    Args:
        state: The budget to raise.
        add_usd: USD to add to the USD limit.
        add_tokens: Tokens to add to the token limit.

    Returns:
        The raised budget.

    Raises:
        ValueError: An amount is not positive, or raises a dimension that has
            no limit (there is nothing to raise).
    """
    limit = state.limit
    if limit is None:
        raise ValueError("this budget has no limit to raise")
    update: dict[str, float | int] = {}
    if add_usd is not None:
        if not add_usd > 0 or limit.usd is None:
            raise ValueError("add_usd must be positive and raise an existing USD limit")
        update["usd"] = float(_to_decimal(limit.usd) + _to_decimal(add_usd))
    if add_tokens is not None:
        if add_tokens <= 0 or limit.tokens is None:
            raise ValueError("add_tokens must be positive and raise an existing token limit")
        update["tokens"] = limit.tokens + add_tokens
    raised = BudgetLimit.model_validate({**limit.model_dump(), **update})
    limits = _limits(raised)
    rearmed: dict[Dimension, list[float]] = {}
    for dimension in _DIMENSIONS:
        kept = _warned(state, dimension)
        if dimension in limits:
            used = _spent(state, dimension)
            kept = [t for t in kept if _reached(used, limits[dimension], t)]
        rearmed[dimension] = kept
    still_over = any(_reached(_spent(state, d), lim) for d, lim in limits.items())
    return state.model_copy(
        update={
            "limit": raised,
            "warned_usd": rearmed["usd"],
            "warned_tokens": rearmed["tokens"],
            "exceeded": state.exceeded and still_over,
        }
    )


class BudgetView(BaseModel):
    """A budget as shown to people (job status, plan status)."""

    model_config = ConfigDict(extra="ignore")

    limit: BudgetLimit | None
    spent_usd: float
    spent_tokens: int
    warnings: list[BudgetWarning]
    exceeded: bool


def view(state: BudgetState) -> BudgetView | None:
    """A budget state as shown to people (``None`` when there is no limit)."""
    limit = state.limit
    if limit is None:
        return None
    warnings = [
        BudgetWarning(dimension=dimension, threshold=threshold, spent=float(_spent(state, dimension)),
                      limit=float((limit.usd if dimension == "usd" else limit.tokens) or 0))
        for dimension in _DIMENSIONS for threshold in _warned(state, dimension)
    ]
    return BudgetView(limit=limit, spent_usd=float(state.spent_usd), spent_tokens=state.spent_tokens,
                      warnings=warnings, exceeded=state.exceeded)


def can_hold(limit: BudgetLimit | None) -> bool:
    """Reaching this limit stops the job (``on_exceed`` is anything but ``notify``)."""
    return limit is not None and limit.on_exceed != "notify"


def holds(state: BudgetState | None) -> bool:
    """The budget is spent and reaching it stops the job.

    While it holds, no ask is auto-decided: the stream activity forwards every ask and
    the job book keeps them pending until a person resumes (with more budget).
    """
    return state is not None and state.exceeded and can_hold(state.limit)


def raised_for_resume(state: BudgetState, add_usd: float | None, add_tokens: int | None, owner: str) -> BudgetState:
    """The budget a resume would leave, checked: a resume must leave it under every limit.

    Args:
        state: The budget now.
        add_usd: USD to add to the limit, if any.
        add_tokens: Tokens to add to the limit, if any.
        owner: ``"job"`` or ``"plan"``, for the message.

    Raises:
        ValueError: The raise is invalid, or the budget would still be exceeded; the
            message says by how much it is spent and how to raise it.
    """
    raised = state if add_usd is None and add_tokens is None else raise_limit(state, add_usd, add_tokens)
    if raised.exceeded:
        needs: list[tuple[str, str, str]] = []  # (input key, amount to add, what is spent)
        for dimension, limit in _limits(raised.limit or BudgetLimit()).items():
            spent = _spent(raised, dimension)
            if not _reached(spent, limit):
                continue
            if dimension == "usd":  # enough to get back under the limit, rounded up to the cent
                need = (spent - limit + Decimal("0.01")).quantize(Decimal("0.01"), rounding=ROUND_UP)
                needs.append(("add_usd", f"{need}", f"{float(spent):g} of its {float(limit):g} USD spent"))
            else:
                needs.append(("add_tokens", str(int(spent - limit) + 1000),
                              f"{int(spent)} of its {int(limit)} tokens spent"))
        example = ", ".join(f'"{key}": {amount}' for key, amount, _ in needs)
        raise ValueError(f"the {owner} budget is still spent ({'; '.join(n[2] for n in needs)}): "
                         f"resume with at least {{{example}}}")
    return raised
