"""Knowledge about individual commands, on plain argv strings (no parsing).

:mod:`jobgov.policy.shell` turns a command line into simple commands; this
module answers the per-command questions it then asks:

* :func:`unwrap` — is ``argv[0]`` a wrapper (``sudo``, ``env``, ``timeout`` …)
  that runs another command, and where does that command start?
* :func:`spawned` — does it run further commands of its own (``xargs``,
  ``find -exec``, ``uv run``, ``poetry run`` …)?
* :func:`shell_script` — is it a shell (or ``eval``) whose commands come from
  a string, from stdin, or from a script file?
* :func:`classify` — does it install packages, or reach the network?

The tables these answers come from (wrappers, runners, shells, install and
network rules, and the borderline decisions they encode) are in
:mod:`jobgov.policy.command_tables`.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from jobgov.policy.argv import Argv, Ref, operands, read_option, skip_options
from jobgov.policy.command_tables import (
    FIND_EXEC,
    INSTALL,
    NETWORK,
    NETWORK_ALWAYS,
    RUNNERS,
    SHELLS,
    VALUE_OPTS,
    WRAPPERS,
    XARGS_VALUE_OPTS,
)

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_VERSIONED = re.compile(r"(python|pypy|pip)[0-9.]*")


def command_name(word: str) -> str:
    """Basename of a command word, with ``python3.11``/``pip3`` folded to ``python``/``pip``."""
    base = posixpath.basename(word)
    match = _VERSIONED.fullmatch(base)
    if match:
        return "python" if match.group(1) == "pypy" else match.group(1)
    return base


# --- wrappers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unwrap:
    """Where a wrapper's payload is: a command (argv[command:]) or a shell string."""

    command: int | None = None
    #: The shell string: from ``script[0]`` up to (excluding) word ``script[1]``, joined by spaces.
    script: tuple[Ref, int] | None = None
    chdir: Ref | None = None


def unwrap(argv: Argv) -> Unwrap | None:
    """Find the command a wrapper runs; ``None`` if ``argv`` wraps nothing."""
    spec = WRAPPERS.get(command_name(argv[0]))
    if spec is None:
        return None
    i, chdir, literal = 1, None, False
    while i < len(argv):
        word = argv[i]
        if word == "--":
            i += 1
            break
        if spec.assignments and (word == "-" or _ASSIGNMENT.match(word)):
            i += 1
            continue
        if not word.startswith("-") or word == "-":
            break
        names, value, i = read_option(argv, i, spec.value_opts)
        for name in names:
            if name in spec.no_command_opts:
                return None
            if value is not None and value[0] < len(argv) and name in spec.script_opts:
                return Unwrap(script=(value, value[0] + 1), chdir=chdir)
            chdir = value if name in spec.chdir_opts else chdir
            literal = literal or name in spec.literal_opts
    i += spec.operands
    if i + 1 < len(argv) and argv[i] in spec.script_opts:  # flock FILE -c 'cmd'
        return Unwrap(script=((i + 1, 0), i + 2), chdir=chdir)
    if spec.script_only or i >= len(argv):
        return None
    if spec.joins_script and not literal:
        return Unwrap(script=((i, 0), len(argv)), chdir=chdir)
    return Unwrap(command=i, chdir=chdir)


# --- commands that run further commands --------------------------------------


def spawned(argv: Argv) -> list[tuple[int, int, bool]]:
    """Commands ``argv`` runs itself, as ``(start, end, args_appended)`` word ranges.

    ``args_appended`` is True when more arguments are only known at run time
    (``xargs``, ``find -exec``).
    """
    name = command_name(argv[0])
    if name == "xargs":
        i = skip_options(argv, 1, XARGS_VALUE_OPTS)
        return [(i, len(argv), True)] if i < len(argv) else []
    if name == "find":
        out = []
        for i, word in enumerate(argv):
            if word in FIND_EXEC:
                end = next((k for k in range(i + 1, len(argv)) if argv[k] in (";", "+")), len(argv))
                if end > i + 1:
                    out.append((i + 1, end, True))
        return out
    if name in RUNNERS:
        sub, value_opts = RUNNERS[name]
        i = skip_options(argv, 1, value_opts)
        if i < len(argv) and argv[i] == sub:
            j = skip_options(argv, i + 1, value_opts)
            return [(j, len(argv), False)] if j < len(argv) else []
    return []


@dataclass(frozen=True, slots=True)
class Script:
    """Where a shell's commands come from: a ``string`` (words start..end) or ``stdin``."""

    source: str
    start: Ref = (0, 0)
    end: int = 0


def shell_script(argv: Argv) -> Script | None:
    """The commands a shell or ``eval`` will run; ``None`` if it runs a script file."""
    name = command_name(argv[0])
    if name == "eval":
        return Script("string", (1, 0), len(argv)) if len(argv) > 1 else None
    if name == "trap":  # trap 'commands' SIGNAL… runs the commands later
        i = skip_options(argv, 1)
        return Script("string", (i, 0), i + 1) if i + 1 < len(argv) and argv[i] != "-" else None
    if name not in SHELLS:
        return None
    has_c = from_stdin = False
    i = 1
    while i < len(argv):
        word = argv[i]
        if word in ("--", "-"):
            i += 1
            break
        if word.startswith("--"):
            i += 2 if word in ("--rcfile", "--init-file") else 1
        elif word[:1] in "-+" and len(word) > 1:
            has_c = has_c or (word[0] == "-" and "c" in word)
            from_stdin = from_stdin or (word[0] == "-" and "s" in word)
            i += 1 + sum(flag in "oO" for flag in word[1:])
        else:
            break
    if has_c:
        return Script("string", (i, 0), i + 1) if i < len(argv) else None
    return Script("stdin") if from_stdin or i >= len(argv) else None


# --- install / network ---------------------------------------------------------


def _python_module(args: list[str]) -> tuple[str, list[str]] | None:
    """``python [opts] -m MODULE args`` → ``(MODULE, args)``."""
    i = skip_options(args, 0, frozenset({"-W", "-X", "-c", "-m"}))
    for j in range(i):
        if args[j] == "-m" and j + 1 < len(args):
            return command_name(args[j + 1]), args[j + 2 :]
        if args[j].startswith("-m") and len(args[j]) > 2:
            return command_name(args[j][2:]), args[j + 1 :]
    return None


def classify(argv: Argv) -> tuple[bool, bool]:
    """Whether a (wrapper-free) argv installs packages and whether it reaches the network.

    Returns:
        ``(install, network)``; ``network`` is always False when ``install`` is True.
    """
    if not argv:
        return False, False
    name, args = command_name(argv[0]), list(argv[1:])
    if name == "python":
        module = _python_module(args)
        if module is None:
            return False, False
        name, args = module
    ops = operands(args, VALUE_OPTS.get(name, frozenset()))
    if name in ("cargo", "rustup"):
        ops = [o for o in ops if not o.startswith("+")]
    install_rule = INSTALL.get(name)
    if install_rule is not None and install_rule(ops, args):
        return True, False
    network_rule = NETWORK.get(name)
    return False, name in NETWORK_ALWAYS or (network_rule is not None and network_rule(ops, args))
