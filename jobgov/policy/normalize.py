"""Turn an opencode ``permission.asked`` into the operations it implies.

This is the only step of the policy that touches the filesystem: paths are
canonicalised (``~``, ``$HOME``, ``..`` and symlinks resolved with
``realpath``, which resolves the deepest existing ancestor and keeps the rest
lexically), so a symlink inside the worktree that points outside counts as
outside. It therefore runs in an activity or the CLI, never in a workflow;
the workflow receives the resulting :class:`~jobgov.domain.asks.NormalizedAsk` as
recorded data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from jobgov.domain.asks import Category, NormalizedAsk, Operation, PermissionAsk
from jobgov.policy.shell import Segment, analyze

#: opencode permissions that read files (their patterns or metadata name the location).
READ_PERMISSIONS = frozenset({"read", "list", "glob", "grep", "lsp"})
#: opencode permissions that edit files.
EDIT_PERMISSIONS = frozenset({"edit", "write", "multiedit", "patch", "apply_patch"})
#: opencode permissions that reach the network.
NETWORK_PERMISSIONS = frozenset({"webfetch", "websearch", "codesearch"})
#: Other opencode built-ins: judged as "other" (ask-user by default), never as MCP tools.
OTHER_BUILTINS = frozenset({"task", "skill", "todoread", "todowrite", "question", "plan_enter", "plan_exit"})


class _Paths:
    """Canonicalises paths against one worktree."""

    def __init__(self, worktree: str, home: str) -> None:
        self.home = home
        self.worktree = os.path.realpath(self.expand(worktree, os.sep))

    def expand(self, raw: str, base: str) -> str:
        if raw == "~" or raw.startswith("~/"):
            raw = self.home + raw[1:]
        elif raw.startswith("~"):
            raw = os.path.expanduser(raw)  # ~user/...
        for var in ("${HOME}", "$HOME"):
            if raw == var or raw.startswith(var + "/"):
                raw = self.home + raw[len(var) :]
        return os.path.join(base, raw)

    def resolve(self, raw: str, base: str | None = None) -> str:
        return os.path.realpath(self.expand(raw, base or self.worktree))

    def inside(self, path: str) -> bool:
        return path == self.worktree or path.startswith(self.worktree.rstrip(os.sep) + os.sep)


def normalize(
    ask: PermissionAsk, worktree: str, *, home: str | None = None, tool_name: str | None = None
) -> NormalizedAsk:
    """Resolve ``ask`` into operations relative to ``worktree``.

    Args:
        ask: the ``permission.asked`` properties.
        worktree: the job's worktree (the agent's project directory).
        home: the agent's home directory for ``~``/``$HOME`` (default: this process's).
        tool_name: the tool that raised the ask, when known from the event stream; it
            tells a read from an edit for ``external_directory`` asks.
    """
    paths = _Paths(worktree, home or os.path.expanduser("~"))
    operations = list(_operations(ask, paths, tool_name))
    if not operations:
        operations = [
            Operation(
                category=Category.OTHER,
                subject=ask.permission,
                detail="the ask names nothing jobgov can judge",
                uncertain=True,
            )
        ]
    return NormalizedAsk(ask=ask, worktree=paths.worktree, operations=operations)


def _operations(ask: PermissionAsk, paths: _Paths, tool_name: str | None) -> Iterable[Operation]:
    permission, meta = ask.permission, ask.metadata
    if permission == "bash":
        command = meta.get("command")
        if isinstance(command, str):
            yield from _shell(command, paths)
        else:
            for pattern in ask.patterns:
                yield from _shell(pattern, paths)
    elif permission in EDIT_PERMISSIONS:
        yield from _files(Category.FILE_EDIT, _path_candidates(meta, ask.patterns), paths)
    elif permission in READ_PERMISSIONS:
        wanted = _path_candidates(meta, ask.patterns if permission in ("read", "list") else [])
        yield from _files(Category.FILE_READ, wanted or [paths.worktree], paths)
    elif permission == "external_directory":
        yield from _external(ask, paths, tool_name)
    elif permission in NETWORK_PERMISSIONS:
        url = meta.get("url") or meta.get("query")
        for subject in [url] if isinstance(url, str) else ask.patterns or [permission]:
            yield Operation(category=Category.NETWORK_ACCESS, subject=subject, detail=permission)
    elif permission == "doom_loop":
        yield Operation(category=Category.DOOM_LOOP, subject=" ".join(ask.patterns) or permission)
    elif permission in OTHER_BUILTINS:
        yield Operation(category=Category.OTHER, subject=permission, detail=" ".join(ask.patterns))
    else:
        yield Operation(category=Category.MCP_TOOLS, subject=permission, detail=" ".join(ask.patterns))


def _path_candidates(meta: dict[str, object], patterns: list[str]) -> list[str]:
    for key in ("filepath", "filePath", "path"):
        value = meta.get(key)
        if isinstance(value, str) and value:
            return [value]
    return [p for p in patterns if p]


def _strip_glob(pattern: str) -> str:
    """opencode's directory patterns end in ``/*``: the directory itself is the location."""
    return pattern[:-2] if pattern.endswith("/*") else pattern


def _files(category: Category, raw_paths: list[str], paths: _Paths) -> Iterable[Operation]:
    if not raw_paths:
        yield Operation(category=category, inside=False, uncertain=True, detail="no path given")
    for raw in raw_paths:
        resolved = paths.resolve(_strip_glob(raw))
        detail = f"as {raw}" if raw != resolved else ""
        yield Operation(category=category, inside=paths.inside(resolved), subject=resolved, detail=detail)


def _external(ask: PermissionAsk, paths: _Paths, tool_name: str | None) -> Iterable[Operation]:
    meta = ask.metadata
    command = meta.get("command")
    if isinstance(command, str):
        # Raised by bash before its own ask: judge the command and every directory it reaches.
        yield from _shell(command, paths)
        directories = meta.get("directories")
        dirs = [d for d in directories if isinstance(d, str)] if isinstance(directories, list) else []
        for raw in dirs or [_strip_glob(p) for p in ask.patterns]:
            resolved = paths.resolve(raw)
            yield Operation(
                category=Category.SHELL_COMMAND,
                inside=paths.inside(resolved),
                subject=command,
                detail=f"reaches {resolved}",
            )
        return
    # Raised by a file tool. Without the tool's name an edit is assumed (the stricter reading).
    category = Category.FILE_READ if tool_name in READ_PERMISSIONS else Category.FILE_EDIT
    wanted = _path_candidates(meta, [])
    parent = meta.get("parentDir")
    if not wanted and isinstance(parent, str) and parent:
        wanted = [parent]
    yield from _files(category, wanted or ask.patterns, paths)


def _shell(command: str, paths: _Paths) -> Iterable[Operation]:
    analysis = analyze(command)
    if analysis.error is not None:
        yield Operation(
            category=Category.SHELL_COMMAND,
            subject=command,
            detail=f"cannot be judged: {analysis.error}",
            uncertain=True,
        )
    for segment in analysis.segments:
        yield from _segment(segment, paths)


def _segment(segment: Segment, paths: _Paths) -> Iterable[Operation]:
    subject = " ".join(segment.argv) or segment.text
    alternates = [segment.text] if segment.text != subject else []
    cwd = paths.resolve(segment.cwd) if segment.cwd is not None else paths.worktree
    unknown: list[str] = [f"cd {segment.cwd}"] if segment.cwd_dynamic else []
    outside = [] if segment.cwd_dynamic or paths.inside(cwd) else [f"runs in {cwd}"]
    for ref in segment.paths:
        if ref.dynamic:
            unknown.append(ref.raw)
            continue
        resolved = paths.resolve(ref.raw, cwd)
        if not paths.inside(resolved):
            outside.append(f"{ref.kind} {resolved}")
    if unknown:
        outside.append("location unknown: " + ", ".join(unknown))
    yield Operation(
        category=Category.SHELL_COMMAND,
        inside=not outside,
        subject=subject,
        alternates=alternates,
        detail="; ".join(outside),
    )
    if segment.install:
        yield Operation(category=Category.INSTALL_PACKAGES, subject=subject, alternates=alternates)
    elif segment.network:
        yield Operation(category=Category.NETWORK_ACCESS, subject=subject, alternates=alternates)
