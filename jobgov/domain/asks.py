"""Shared data shapes: permission asks, the operations they imply, and decisions.

These models cross the activity/workflow boundary (through the pydantic data
converter), so they stay plain data: no methods that touch the filesystem,
the clock or the network.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Action(StrEnum):
    """What to do with a permission ask."""

    AUTO_APPROVE = "auto-approve"
    ASK_USER = "ask-user"
    DENY = "deny"


#: Strictest wins: the precedence used to combine every partial decision.
STRICTNESS: dict[Action, int] = {Action.AUTO_APPROVE: 0, Action.ASK_USER: 1, Action.DENY: 2}


def strictest(*actions: Action) -> Action:
    """Return the strictest of ``actions`` (deny > ask-user > auto-approve)."""
    return max(actions, key=STRICTNESS.__getitem__)


class Category(StrEnum):
    """The policy categories a permission ask is judged under."""

    FILE_EDIT = "file_edit"
    FILE_READ = "file_read"
    SHELL_COMMAND = "shell_command"
    NETWORK_ACCESS = "network_access"
    INSTALL_PACKAGES = "install_packages"
    MCP_TOOLS = "mcp_tools"
    DOOM_LOOP = "doom_loop"
    OTHER = "other"


#: Categories whose decision depends on whether the operation stays inside the worktree.
LOCATED_CATEGORIES = frozenset({Category.FILE_EDIT, Category.FILE_READ, Category.SHELL_COMMAND})


class ToolRef(BaseModel):
    """The tool call that raised a permission ask."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    message_id: str = Field(default="", alias="messageID")
    call_id: str = Field(default="", alias="callID")


class PermissionAsk(BaseModel):
    """The ``properties`` of an opencode ``permission.asked`` event, as sent by opencode 1.18."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    id: str = Field(min_length=1)
    session_id: str = Field(alias="sessionID", min_length=1)
    permission: str = Field(min_length=1)
    patterns: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    always: list[str] = Field(default_factory=list)
    tool: ToolRef | None = None


class Operation(BaseModel):
    """One thing an ask would do, already normalised (paths canonical, command parsed).

    ``inside`` is ``True``/``False`` for located categories (file edit, read,
    shell) and ``None`` where location does not apply (network, installs, MCP).
    ``subject`` is what policy rules match against: the simple command for
    shell operations, the canonical path for file operations, the URL for web
    access, the tool name for MCP tools.
    """

    category: Category
    inside: bool | None = None
    subject: str = ""
    #: Other spellings of the subject that rules also match (e.g. the command as written).
    alternates: list[str] = Field(default_factory=list)
    detail: str = ""
    #: The policy cannot judge this operation safely (unparsable command, inline code ...).
    uncertain: bool = False
    #: It runs code from the worktree that jobgov does not read (tests, builds, scripts, hooks):
    #: ``shell_command.project_code`` decides it.
    project_code: bool = False
    #: The command word of a command jobgov does not model; unjudgeable unless ``shell.trust`` names it.
    unmodelled: str | None = None


class NormalizedAsk(BaseModel):
    """A permission ask turned into the operations it implies; the pure policy's input."""

    ask: PermissionAsk
    worktree: str
    operations: list[Operation]


class Decision(BaseModel):
    """The policy's verdict on one ask, with the reason a person can audit."""

    action: Action
    category: Category
    reason: str
    rule: str | None = None
    subject: str = ""


def unjudgeable(ask: PermissionAsk, worktree: str, why: str) -> NormalizedAsk:
    """An ask jobgov could not read or normalise, as one uncertain operation (so a person decides)."""
    detail = f"jobgov cannot judge this ask: {why}"
    operation = Operation(category=Category.OTHER, subject=ask.permission, detail=detail, uncertain=True)
    return NormalizedAsk(ask=ask, worktree=worktree, operations=[operation])
