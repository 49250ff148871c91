"""The command model: what a modelled command does with each of its words (closed world).

A simple command (wrappers already peeled by :mod:`jobgov.policy.shellwords`) is
looked up in the model tables (:mod:`jobgov.policy.model_tables`). A command that is
not there is *unknown*: jobgov does not auto-approve what it does not understand. A
modelled command's words are read against its :class:`Spec`: which options take
values and what those values are, what its operands are (paths read, written or
deleted, plain data, a program text, a working directory), and what it does besides
(runs code jobgov cannot see, runs the project's own code). The result is a
:class:`Judgement` that :mod:`jobgov.policy.normalize` turns into operations.

Pure: no filesystem, no environment. Every path is reported as written (with the
command's own ``-C DIR`` applied), resolution happens in ``normalize``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from jobgov.policy.commands import command_name
from jobgov.policy.shellwords import HARMLESS, PathKind, PathRef, Word

#: What an operand or an option value is.
#: ``read``/``write``/``delete``: a path; ``data``: not a path; ``program``: a script file the
#: command runs (a path read, and the project's own code); ``code``: program text jobgov cannot
#: judge; ``cwd``: a directory the command works in (later relative paths resolve against it);
#: ``command``: a command it runs (judged as a segment of its own by the shell analyser).
Role = Literal["read", "write", "delete", "data", "program", "code", "cwd", "command"]
#: What a command (or an option) does besides touching its paths: runs code jobgov cannot
#: judge, runs the project's own code, or follows symlinks below the paths it is given.
Effect = Literal["code", "project", "follow"]
#: Where a command's standard input comes from.
Stdin = Literal["none", "pipe", "heredoc", "herestring", "file"]

#: A URI scheme (``data:``, ``file:``, ``https:``): what follows is no local path.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
#: Files that are a process's standard input: a program read from one is fed, not a file.
_STDIN_FILE = re.compile(r"/dev/stdin|/dev/fd/\d+|/proc/self/fd/\d+|/dev/tty|-")
_PATH_ROLES: dict[str, PathKind] = {"read": "read", "write": "write", "delete": "delete", "program": "program",
                                     "cwd": "cd"}


@dataclass(frozen=True, slots=True)
class Judgement:
    """What one simple command does, as far as the model can tell."""

    name: str
    """The command's name (basename, ``python3.11`` folded to ``python``)."""
    known: bool
    """The command is in the model (``False``: unknown, a person decides unless trusted)."""
    canonical: str
    """The command as it acts: its name, and its words with the options before a subcommand
    dropped (``/usr/bin/git -C . --no-pager push origin`` → ``git push origin``); rules match it."""
    plain: tuple[str, ...] = ()
    """Name, subcommands and operands only, every option and option value dropped
    (``pip --timeout 60 install x`` → ``pip install x``): what the install and network tables read."""
    paths: tuple[PathRef, ...] = ()
    """Every path it reads, writes or deletes, by role, with ``-C``-style directories applied."""
    unjudgeable: tuple[str, ...] = ()
    """The parts it cannot judge (inline code, a program from stdin, an unknown subcommand ...)."""
    project_code: bool = False
    """It runs code from the worktree (tests, builds, scripts, hooks) that jobgov does not read."""
    local: tuple[tuple[str, str], ...] = ()
    """Tools it runs that are the project's own code if the worktree has them: ``("npm-bin", "tsc")``
    (``npx tsc``: else npx downloads it), ``("python-module", "mypkg")`` (``python -m mypkg``: else unknown)."""


@dataclass
class Context:
    """What a spec's handler sees and fills in."""

    words: list[Word]
    stdin: Stdin
    base: str | None = None
    paths: list[PathRef] = field(default_factory=list)
    unjudgeable: list[str] = field(default_factory=list)
    project_code: bool = False
    follow: bool = False
    local: list[tuple[str, str]] = field(default_factory=list)
    canonical: list[str] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)

    def path(self, word: Word, role: Role) -> None:
        """Record ``word`` as a path of ``role`` (``data``/``code``/``command`` record nothing here)."""
        if role == "code":
            self.unjudgeable.append(f"runs program text jobgov cannot judge: {_short(word.text)}")
            return
        if role == "command":
            if word.dynamic:
                self.unknown(f"runs a command known only at run time: {_short(word.text, 40)}")
            return
        if role == "program":
            self.project_code = True
        kind = _PATH_ROLES.get(role)
        if kind is None:
            return
        text = word.text
        if role == "program" and _STDIN_FILE.fullmatch(text):
            self.unknown(f"runs a program read from {text} (its standard input), which jobgov cannot judge")
            return
        if not word.dynamic and HARMLESS.fullmatch(text):
            return
        if "://" in text or (role == "program" and _SCHEME.match(text)):
            self.unknown(f"{'runs' if role == 'program' else 'uses'} {_short(text, 40)}, which is not a local path")
            return
        if self.base is not None and not text.startswith(("/", "~", "$")) and not word.dynamic:
            text = posixpath.join(self.base, text)
        follows = self.follow and kind in ("read", "write", "delete", "program")
        self.paths.append(PathRef(text, kind, word.dynamic or _unknown_glob(word), word.glob, follows))

    def cwd(self, word: Word) -> None:
        """The command works in ``word`` (``git -C``, ``make -C``): a path, and the base of later ones."""
        self.path(word, "cwd")
        joined = word.text if self.base is None or word.text.startswith(("/", "~")) else posixpath.join(
            self.base, word.text)
        self.base = f"${{unknown:{word.text}}}" if word.dynamic else joined

    def unknown(self, why: str) -> None:
        self.unjudgeable.append(why)


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _unknown_glob(word: Word) -> bool:
    """A glob whose matches cannot be bounded statically: its fixed prefix is not a plain directory,
    or one of its components can match ``..`` (``.*``, ``.?``)."""
    if not word.glob:
        return False
    for part in word.text.split("/"):
        # Without dotglob a glob matches a leading dot only literally: only ``.*``-like parts reach ``..``.
        if part.startswith(".") and re.search(r"(?<!\\)[*?[]", part) and re.fullmatch(_glob_regex(part), ".."):
            return True
    return False


def _glob_regex(part: str) -> str:
    out = []
    for ch in part:
        out.append(".*" if ch == "*" else "." if ch == "?" else "[^/]" if ch == "[" else re.escape(ch))
    return "".join(out)


# --- specs ------------------------------------------------------------------------------

#: A handler reads the operands itself: ``(context, operands, options seen)``.
Handler = Callable[[Context, list[Word], dict[str, list[Word]]], None]


@dataclass(frozen=True, slots=True)
class Spec:
    """How one command (or subcommand) reads its words."""

    operands: Role | Handler = "read"
    """The role of every operand, or a handler that reads them."""
    values: Mapping[str, Role] = field(default_factory=dict)
    """Options that take a value (``-o FILE``), with the value's role."""
    effects: Mapping[str, Effect | Role] = field(default_factory=dict)
    """Options that change what the command does: run code, run project code, or turn its
    operands into another role (``sed -i``: files are written)."""
    does: frozenset[Effect] = frozenset()
    """What the command always does besides its paths (``project``: runs project code)."""
    subcommands: Mapping[str, Spec] | None = None
    """The first operand names a subcommand, read with its own spec; an unknown one is unknown."""
    posix: bool = False
    """Options end at the first operand (``python script.py -x``: ``-x`` is the script's)."""
    strict: bool = False
    """Options not listed in ``values``/``effects``/``flags`` are unknown (``git``'s global options)."""
    flags: frozenset[str] = frozenset()
    """Options without a value, for ``strict`` specs."""
    max_operands: int | None = None
    """More operands than this is a use the model does not know."""
    fallback: Spec | None = None
    """The spec of an unknown subcommand (``yarn build`` runs the script ``build``); ``None``: unknown."""
    stops_after: frozenset[str] = frozenset()
    """Options after whose value every word is an operand (``python -m MODULE ARGS``)."""
    long_single_dash: bool = False
    """Options are words like ``-toolexec=x`` or ``-o file`` (go, javac), not bundled letters."""


def spec(operands: Role | Handler = "read", *, values: str = "", effects: Mapping[str, Effect | Role] | None = None,
         does: str = "", subcommands: Mapping[str, Spec] | None = None, posix: bool = False, strict: bool = False,
         flags: str = "", max_operands: int | None = None, fallback: Spec | None = None,
         stops_after: str = "", long_single_dash: bool = False) -> Spec:
    """Build a :class:`Spec`; ``values`` is ``"-o:write --out:write -n"`` (no role: ``data``)."""
    table: dict[str, Role] = {}
    for item in values.split():
        name, _, role = item.partition(":")
        # An option value of no stated role is read as a path: a value misread as a path
        # (``-n 5``) is harmless inside the worktree, a path misread as data would not be.
        table[name] = role or "read"  # type: ignore[assignment]
    return Spec(operands, table, dict(effects or {}), frozenset(does.split()),  # type: ignore[arg-type]
                subcommands, posix, strict, frozenset(flags.split()), max_operands, fallback,
                frozenset(stops_after.split()), long_single_dash)


# --- reading a command line ------------------------------------------------------------------


def judge(words: Sequence[Word], stdin: Stdin, tables: Mapping[str, Spec]) -> Judgement:
    """Read a wrapper-free simple command against the model.

    Args:
        words: The command's words (first the command word).
        stdin: Where its standard input comes from (a program fed to an interpreter is code).
        tables: The model: command name → :class:`Spec`.
    """
    first = words[0]
    name = command_name(first.text)
    found = tables.get(name)
    ctx = Context(list(words), stdin, canonical=[name, *(w.text for w in words[1:])], plain=[name])
    if "/" in first.text and not _is_system_path(first.text):
        # A program named by path (./run.sh, .venv/bin/pytest, node_modules/.bin/eslint) is the
        # project's own code: its file is judged as a path read, and a modelled tool's words are
        # still read by its spec (``.venv/bin/python -c ...`` is inline code all the same).
        ctx.path(first, "program")
        if found is None:
            return Judgement(name=name, known=True, canonical=" ".join(w.text for w in words),
                             plain=(first.text,), paths=tuple(ctx.paths), unjudgeable=tuple(ctx.unjudgeable),
                             project_code=True)
    elif found is None:
        return Judgement(name=name, known=False, canonical=" ".join(ctx.canonical))
    _read(ctx, found, list(words[1:]))
    return Judgement(name=name, known=True, canonical=" ".join(ctx.canonical), plain=tuple(ctx.plain),
                     paths=tuple(ctx.paths), unjudgeable=tuple(ctx.unjudgeable), project_code=ctx.project_code,
                     local=tuple(ctx.local))


def _is_system_path(text: str) -> bool:
    return bool(re.fullmatch(r"/(usr/)?(local/)?s?bin/[^/]+", text))


def _read(ctx: Context, spec_: Spec, args: list[Word]) -> None:
    operands: list[Word] = []
    seen: dict[str, list[Word]] = {}
    role_override: Role | None = None
    i, options_done = 0, False
    while i < len(args):
        word = args[i]
        text = word.text
        if options_done or word.dynamic or not text.startswith("-") or text == "-":
            if spec_.subcommands is not None and not operands and not options_done:
                _subcommand(ctx, spec_, word, args[i + 1:])
                return
            operands.append(word)
            if spec_.posix:
                options_done = True
            i += 1
            continue
        if text == "--":
            options_done = True
            i += 1
            continue
        names, value, i = _option(args, i, spec_)
        for opt in names:
            seen.setdefault(opt, [])
            if opt in spec_.values and value is not None:
                seen[opt].append(value)
                role = spec_.values[opt]
                if role == "cwd":
                    ctx.cwd(value)
                else:
                    ctx.path(value, role)
            effect = spec_.effects.get(opt)
            if effect == "code":
                ctx.unknown(f"{opt} runs code jobgov cannot judge")
            elif effect == "project":
                ctx.project_code = True
            elif effect == "follow":
                ctx.follow = True
            elif effect is not None:
                role_override = effect
            if spec_.strict and opt not in spec_.values and opt not in spec_.effects and opt not in spec_.flags:
                ctx.unknown(f"unknown option {opt}")
            if value is not None and opt not in spec_.values and _path_like(value.text):
                # An option jobgov does not know, with a value that looks like a path (--output=../x):
                # the strictest reading is that it writes there.
                ctx.path(value, "write")
        if any(opt in spec_.stops_after for opt in names):
            operands += args[i:]  # what follows belongs to the module or program
            break
    ctx.project_code = ctx.project_code or "project" in spec_.does
    if spec_.subcommands is not None and not operands:
        return
    if spec_.max_operands is not None and len(operands) > spec_.max_operands:
        ctx.unknown(f"more operands than {ctx.canonical[0]} takes")
    ctx.plain += [w.text for w in operands]
    if callable(spec_.operands):
        spec_.operands(ctx, operands, seen)
    else:
        for word in operands:
            ctx.path(word, role_override or spec_.operands)


def data(values: str) -> str:
    """Mark every option of a ``values`` string that names no role as taking plain data (patterns, counts)."""
    return " ".join(item if ":" in item else f"{item}:data" for item in values.split())


def read_with(ctx: Context, spec_: Spec, args: list[Word]) -> None:
    """Read ``args`` with another command's spec (``python -m pytest ARGS`` reads ARGS as pytest)."""
    _read(ctx, spec_, args)


def _subcommand(ctx: Context, spec_: Spec, word: Word, rest: list[Word]) -> None:
    assert spec_.subcommands is not None
    sub = spec_.subcommands.get(word.text, spec_.fallback) if not word.dynamic else None
    # Rules see the subcommand right after the name (and the plain form keeps only operands).
    ctx.canonical[len(ctx.plain):] = [word.text, *(w.text for w in rest)]
    ctx.plain.append(word.text)
    if sub is None:
        ctx.unknown(f"unknown subcommand {ctx.canonical[0]} {_short(word.text, 30)}")
        return
    ctx.project_code = ctx.project_code or "project" in spec_.does
    _read(ctx, sub, rest)


def _option(args: list[Word], i: int, spec_: Spec) -> tuple[list[str], Word | None, int]:
    """Read the option word ``args[i]``: its names, its value (if it takes one), the next index."""
    text = args[i].text
    if text.startswith("--") or spec_.long_single_dash:
        name, eq, rest = text.partition("=")
        if eq:
            return [name], Word(rest, args[i].dynamic, args[i].glob), i + 1
        if name in spec_.values and i + 1 < len(args):
            return [name], args[i + 1], i + 2
        return [name], None, i + 1
    names: list[str] = []
    for j in range(1, len(text)):
        opt = "-" + text[j]
        names.append(opt)
        if opt in spec_.values:
            if j + 1 < len(text):
                return names, Word(text[j + 1:], args[i].dynamic, args[i].glob), i + 1
            return names, (args[i + 1] if i + 1 < len(args) else None), i + 2
    return names, None, i + 1


def _path_like(text: str) -> bool:
    return text.startswith(("/", "~", "..")) or "/" in text


# --- handlers for commands whose operands have different roles ---------------------------------------


def last_is(role: Role, rest: Role = "read", target_opts: tuple[str, ...] = ("-t", "--target-directory")) -> Handler:
    """``cp a b DEST``: every operand ``rest`` but the last, which is ``role`` (unless ``-t DIR``)."""

    def handler(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
        targeted = any(opt in seen for opt in target_opts)
        for k, word in enumerate(ops):
            ctx.path(word, role if k == len(ops) - 1 and not targeted else rest)

    return handler


def first_is(role: Role, rest: Role = "read", unless: tuple[str, ...] = ()) -> Handler:
    """``grep PATTERN FILE...``: the first operand is ``role`` (unless one of ``unless`` gave it)."""

    def handler(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
        skip = 0 if any(opt in seen for opt in unless) else 1
        for k, word in enumerate(ops):
            ctx.path(word, role if k < skip else rest)

    return handler


def all_data_or_files(file_opts: tuple[str, ...]) -> Handler:
    """Operands are data unless an option says they are files."""

    def handler(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
        role: Role = "read" if any(opt in seen for opt in file_opts) else "data"
        for word in ops:
            ctx.path(word, role)

    return handler


def interpreter(code_opts: tuple[str, ...], stdin_dash: bool = True) -> Handler:
    """``python [opts] [SCRIPT [args]]``: a script file is project code; none means stdin is the program."""

    def handler(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
        if any(opt in seen for opt in code_opts):
            return  # the inline program was reported by its option
        if not ops and any(opt in seen for opt in _NO_PROGRAM):
            return  # --version, --help: nothing runs
        if not ops or (stdin_dash and ops[0].text == "-"):
            if ctx.stdin == "file":
                ctx.project_code = True  # `python < script.py`: the redirect's path is judged as a read
            elif ctx.stdin == "none":
                ctx.unknown(f"{ctx.canonical[0]} reads its program from the terminal")
            else:
                ctx.unknown(f"{ctx.canonical[0]} runs a program fed by {ctx.stdin} that jobgov cannot judge")
            return
        ctx.path(ops[0], "program")

    return handler


#: Interpreter options after which no program runs.
_NO_PROGRAM = frozenset({"-V", "--version", "-h", "--help", "-v"})


def key_values(roles: Mapping[str, Role]) -> Handler:
    """``dd if=A of=B``: operands are ``key=value`` words; unknown keys are data."""

    def handler(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
        for word in ops:
            key, eq, value = word.text.partition("=")
            if not eq:
                ctx.unknown(f"unexpected operand {_short(word.text, 30)}")
            elif key in roles:
                ctx.path(Word(value, word.dynamic, word.glob), roles[key])

    return handler


def unknown_use(why: str) -> Handler:
    """Operands the model cannot judge (``patch`` writes the files its input names)."""

    def handler(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
        ctx.unknown(why)

    return handler


def no_operands(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """A command used without operands only (``pwd``, ``git status``); operands are data."""
