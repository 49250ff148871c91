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

import glob as globlib
import itertools
import os
import re
import socket
import stat
from collections.abc import Iterable

from jobgov.domain.asks import Category, NormalizedAsk, Operation, PermissionAsk, unjudgeable
from jobgov.policy.shell import Segment, analyze

#: opencode permissions that read files (their patterns or metadata name the location).
READ_PERMISSIONS = frozenset({"read", "list", "glob", "grep", "lsp"})
#: opencode permissions that edit files (``edit`` today; the others are earlier opencode's names).
EDIT_PERMISSIONS = frozenset({"edit", "write", "multiedit", "patch", "apply_patch"})
#: opencode permissions that reach the network.
NETWORK_PERMISSIONS = frozenset({"webfetch", "websearch", "codesearch", "repo_clone"})
#: Other opencode built-ins: judged as "other" (ask-user by default), never as MCP tools.
OTHER_BUILTINS = frozenset({"task", "skill", "todoread", "todowrite", "question", "plan_enter", "plan_exit",
                            "repo_overview", "workflow_tool_approval"})
#: How opencode names an MCP tool: ``sanitize(server) + "_" + sanitize(tool)``, where sanitize
#: replaces every character outside ``[A-Za-z0-9_-]`` with ``_``. A name of any other shape
#: (``Bash``, ``shell``, ``bash `` with a space) is not an MCP tool and is judged as ``other``.
MCP_NAME = re.compile(r"[A-Za-z0-9-]+_[A-Za-z0-9_-]+")
#: Paths through which a process reaches another's root, working directory or open files: they
#: resolve to the *worker's* view, not the agent's, so their location is unknown.
_PROC_LINK = re.compile(r"/proc/[^/]+/(root|cwd|fd|exe|map_files)(/|$)")
#: Paths with more components than this are not resolved (their location is unknown).
MAX_PATH_PARTS = 1024
#: A glob matching more paths than this is not checked path by path (its location is unknown).
MAX_GLOB_MATCHES = 1000
#: Entries looked at for symlinks leading outside, below a path a command follows links in.
MAX_SCANNED_ENTRIES = 20_000
_GLOB_CHARS = re.compile(r"(?<!\\)[*?[]")
#: Files that decide what a build or test runner runs: writing one and then running the runner in the
#: same command line runs code nobody reviewed as the project's.
RUNNER_FILES = frozenset({
    "Makefile", "makefile", "GNUmakefile", "conftest.py", "package.json", "setup.py", "setup.cfg", "pyproject.toml",
    "Rakefile", "Cargo.toml", "build.rs", "noxfile.py", "tox.ini", "Taskfile.yml", "justfile", "Justfile",
    "build.gradle", "build.gradle.kts", "pom.xml", "CMakeLists.txt", "meson.build", "BUILD", "BUILD.bazel",
    "WORKSPACE", "jest.config.js", "vitest.config.ts", "vite.config.ts", "webpack.config.js", ".npmrc",
})  # fmt: skip
#: bash's pseudo-devices that open network connections.
_NET_DEVICE = re.compile(r"/dev/(tcp|udp)/")


class _Paths:
    """Canonicalises paths against one worktree (resolved directories are cached)."""

    def __init__(self, worktree: str, home: str) -> None:
        self.home = home
        self.worktree = os.path.realpath(self.expand(worktree, os.sep))
        self._cache: dict[tuple[str, str | None], str | None] = {}
        self._steps: dict[tuple[str, str], str] = {}
        self._missing: set[str] = set()
        self._links: dict[str, str | None] = {}

    def expand(self, raw: str, base: str) -> str:
        if raw == "~" or raw.startswith("~/"):
            raw = self.home + raw[1:]
        elif raw.startswith("~"):
            raw = os.path.expanduser(raw)  # ~user/...
        for var in ("${HOME}", "$HOME"):
            if raw == var or raw.startswith(var + "/"):
                raw = self.home + raw[len(var) :]
        return os.path.join(base, raw)

    def resolve(self, raw: str, base: str | None = None) -> str | None:
        """The canonical path, or ``None`` when it cannot be known from here (unreadable link,
        NUL byte, undecodable name, a ``/proc`` link to another process's view)."""
        key = (raw, base)
        if key not in self._cache:
            self._cache[key] = self._resolve(raw, base)
        return self._cache[key]

    def _resolve(self, raw: str, base: str | None) -> str | None:
        try:
            joined = self.expand(raw, base or self.worktree)
            joined.encode()  # a name that is not valid Unicode cannot be recorded, let alone judged
            if _PROC_LINK.match(joined):
                return None
            resolved = self._real(joined)
        except (OSError, ValueError, UnicodeError):
            return None
        return None if resolved is None or _PROC_LINK.match(resolved) else resolved

    def _real(self, path: str) -> str | None:
        """``realpath``, one component at a time, each step cached: a chain of ``cd a; cd a; ...``
        costs one ``lstat`` per new component instead of re-walking every directory each time."""
        parts = [p for p in path.split(os.sep) if p and p != "."]
        if len(parts) > MAX_PATH_PARTS:
            return None
        current = os.sep
        for part in parts:
            step = self._steps.get((current, part))
            if step is None:
                step = self._step(current, part)
                self._steps[(current, part)] = step
            current = step
        return current

    def _step(self, current: str, part: str) -> str:
        if part == "..":
            return os.path.dirname(current)
        candidate = os.path.join(current, part)
        if current in self._missing:
            self._missing.add(candidate)  # under a missing directory nothing exists either
            return candidate
        try:
            info = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            self._missing.add(candidate)
            return candidate
        return os.path.realpath(candidate) if stat.S_ISLNK(info.st_mode) else candidate

    def inside(self, path: str | None) -> bool:
        if path is None:
            return False
        return path == self.worktree or path.startswith(self.worktree.rstrip(os.sep) + os.sep)

    def has_local(self, kind: str, name: str, cwd: str | None) -> bool:
        """The worktree (or the command's directory inside it) has this tool of its own."""
        bases = dict.fromkeys(b for b in (cwd if self.inside(cwd) else None, self.worktree) if b is not None)
        for base in bases:
            if kind == "npm-bin":
                candidates = [os.path.join(base, "node_modules", ".bin", name)]
            else:
                candidates = [os.path.join(base, *sub, name + suffix) for sub in ((), ("src",))
                              for suffix in (".py", os.sep + "__init__.py", os.sep + "__main__.py")]
            for candidate in candidates:
                resolved = self.resolve(candidate)
                if resolved is not None and self.inside(resolved) and os.path.exists(resolved):
                    return True
        return False

    def glob(self, pattern: str, cwd: str | None) -> list[str | None] | None:
        """What a glob matches, resolved (bash keeps a pattern that matches nothing as it is);
        ``None`` when it matches more than :data:`MAX_GLOB_MATCHES` paths or cannot be read."""
        base = cwd or self.worktree
        expanded = self.expand(pattern, base)
        try:
            found = list(itertools.islice(globlib.iglob(expanded, recursive="**" in pattern), MAX_GLOB_MATCHES + 1))
        except (OSError, ValueError, UnicodeError, RecursionError):
            return None
        if len(found) > MAX_GLOB_MATCHES:
            return None
        results = [self.resolve(match) for match in found] or [self.resolve(pattern, base)]
        head = os.path.dirname(pattern)
        if head and _GLOB_CHARS.search(head):
            # `*/*`: a directory the pattern passes through (a symlink to outside) counts even when
            # nothing below it matches now.
            above = self.glob(head, cwd)
            if above is None:
                return None
            results += [d for d in above if not self.inside(d)]
        return results

    def in_git_dir(self, path: str) -> bool:
        """``path`` is in the worktree's ``.git`` (hooks, config): writing there changes what git runs."""
        git_dir = os.path.join(self.worktree, ".git")
        return path == git_dir or path.startswith(git_dir + os.sep)

    def outside_link(self, path: str) -> str | None:
        """A symlink at or below ``path`` that leads outside the worktree (for commands that follow them)."""
        if path not in self._links:
            self._links[path] = self._scan_links(path)
        return self._links[path]

    def _scan_links(self, path: str) -> str | None:
        seen = 0
        try:
            for root, dirs, files in os.walk(path, followlinks=False):
                for name in (*dirs, *files):
                    seen += 1
                    if seen > MAX_SCANNED_ENTRIES:
                        return f"one of more than {MAX_SCANNED_ENTRIES:,} entries (too many to check)"
                    entry = os.path.join(root, name)
                    if os.path.islink(entry) and not self.inside(os.path.realpath(entry)):
                        return entry
        except (OSError, ValueError, UnicodeError):
            return path
        return None

    @staticmethod
    def hard_linked(path: str | None) -> bool:
        """An existing regular file with other hard links: writing it changes them too."""
        if path is None:
            return False
        try:
            info = os.lstat(path)
        except (OSError, ValueError):
            return False
        return stat.S_ISREG(info.st_mode) and info.st_nlink > 1


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
    if not os.path.isdir(worktree):
        return unjudgeable(ask, worktree, f"its worktree {worktree} does not exist on {socket.gethostname()}")
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
    elif permission in OTHER_BUILTINS or not MCP_NAME.fullmatch(permission):
        yield Operation(category=Category.OTHER, subject=permission, detail=" ".join(ask.patterns))
    else:
        yield Operation(category=Category.MCP_TOOLS, subject=permission, detail=" ".join(ask.patterns))


def _under_any(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


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
        if resolved is None:
            shown = raw.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
            yield Operation(category=category, inside=False, subject=shown, detail="location unknown")
            continue
        detail = f"as {raw}" if raw != resolved else ""
        inside = paths.inside(resolved)
        if inside and category is Category.FILE_EDIT and paths.hard_linked(resolved):
            inside, detail = False, "has other hard links: writing it changes them too"
        yield Operation(category=category, inside=inside, subject=resolved, detail=detail)


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
                detail=f"reaches {resolved or raw}",
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
    downloaded: list[str] = []  # what earlier network commands of the line saved, resolved
    sourced = False
    for segment in analysis.segments:
        yield from _segment(segment, paths, downloaded, sourced)
        judged = segment.judgement
        sourced = sourced or (judged is not None and judged.name in ("source", "."))


def _segment(segment: Segment, paths: _Paths, downloaded: list[str] | None = None,
             sourced: bool = False) -> Iterable[Operation]:
    """The operations of one simple command.

    ``downloaded``: paths earlier network commands of the same line saved (``curl -o``, ``wget``,
    ``git clone``; this one's are added): running them runs code fetched a moment ago, which is
    no more the project's than ``curl ... | sh``. ``sourced``: an earlier command sourced a file,
    which may have redefined any name this one uses.
    """
    downloaded = [] if downloaded is None else downloaded
    judged = segment.judgement
    subject = " ".join(segment.argv) or segment.text
    alternates = [text for text in dict.fromkeys([segment.text, judged.canonical if judged else ""])
                  if text and text != subject]
    cwd = paths.resolve(segment.cwd) if segment.cwd is not None else paths.worktree
    unknown: list[str] = [f"cd {segment.cwd}"] if segment.cwd_dynamic or cwd is None else []
    outside = [] if unknown or paths.inside(cwd) else [f"runs in {cwd}"]
    refs = list(segment.paths)
    if judged is not None and judged.known:
        # The model knows what each word is: its paths replace the guesses made from their look.
        refs = [ref for ref in refs if ref.kind != "arg"] + list(judged.paths)
    network = segment.network
    problems: list[str] = []
    new_writes: list[str] = []
    for ref in refs:
        if not ref.dynamic and _NET_DEVICE.match(ref.raw):
            network = True
            continue
        if ref.dynamic:
            unknown.append(ref.raw)
            continue
        targets = paths.glob(ref.raw, cwd) if ref.glob else [paths.resolve(ref.raw, cwd)]
        if targets is None:
            unknown.append(f"{ref.raw} (matches too many paths to check)")
            continue
        writes = ref.kind in ("write", "delete", "redirect-write")
        for resolved in targets:
            if ref.kind == "program" and resolved is not None and _under_any(resolved, downloaded):
                problems.append(f"runs {resolved}, which this command line downloads first")
            if writes and resolved is not None and paths.inside(resolved):
                new_writes.append(resolved)
            if resolved is None:
                unknown.append(ref.raw)
            elif not paths.inside(resolved):
                outside.append(f"{ref.kind} {resolved}")
            elif writes and paths.hard_linked(resolved):
                outside.append(f"{ref.kind} {resolved}, which has other hard links")
            elif writes and paths.in_git_dir(resolved):
                problems.append(f"writes {resolved}, git's own files, which can make git run commands")
            elif ref.follow and (link := paths.outside_link(resolved)) is not None:
                outside.append(f"{ref.kind} {resolved} following {link}")
    if unknown:
        outside.append("location unknown: " + ", ".join(dict.fromkeys(unknown)))
    problems += list(judged.unjudgeable) if judged is not None else []
    if judged is not None and judged.project_code and downloaded:
        configs = [d for d in downloaded if os.path.basename(d) in RUNNER_FILES]
        below = [d for d in downloaded if d != paths.worktree]
        if configs or (cwd is not None and _under_any(cwd, below)):
            problems.append(f"runs the project's code with {(configs or below)[0]}, which this command line "
                            "downloads first")
    if segment.network or segment.install:
        downloaded += new_writes
    problems += [f"runs through {name}, which jobgov does not model" for name in segment.odd_wrappers]
    # After a `source` every later command may be a definition from the sourced file: project code.
    project_code = (judged is not None and judged.project_code) or sourced
    install = segment.install
    for kind, name in judged.local if judged is not None else ():
        if paths.has_local(kind, name, cwd):
            project_code = True
            install = install and kind != "npm-bin"  # npx runs the project's own copy: nothing is fetched
        elif kind == "python-module":
            problems.append(f"runs module {name}, which is neither the project's nor one jobgov models")
    yield Operation(
        category=Category.SHELL_COMMAND,
        inside=not outside,
        subject=subject,
        alternates=alternates,
        detail="; ".join([*problems, *outside]),
        uncertain=bool(problems),
        project_code=project_code,
        unmodelled=segment.argv[0] if judged is not None and not judged.known else None,
    )
    if install:
        yield Operation(category=Category.INSTALL_PACKAGES, subject=subject, alternates=alternates)
    elif network:
        yield Operation(category=Category.NETWORK_ACCESS, subject=subject, alternates=alternates)
