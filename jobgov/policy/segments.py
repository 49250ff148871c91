"""What a command line runs, as :func:`jobgov.policy.shell.analyze` finds it: its simple commands.

The result types of the shell walk, apart from the walk itself, so that what reads them
(:mod:`jobgov.policy.pipes`, :mod:`jobgov.policy.normalize`) needs no import of the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobgov.policy.model import Judgement
from jobgov.policy.shellwords import PathRef

__all__ = ["Segment", "ShellAnalysis"]


@dataclass(frozen=True, slots=True)
class Segment:
    """One simple command that the shell would run."""

    text: str
    argv: tuple[str, ...]
    cwd: str | None = None
    paths: tuple[PathRef, ...] = ()
    install: bool = False
    network: bool = False
    #: ``cwd`` is not statically known (``cd $X``, ``cd -``); it is then only a hint.
    cwd_dynamic: bool = False
    #: Wrapper commands stripped from the front of ``argv`` (``("sudo", "timeout")``).
    wrappers: tuple[str, ...] = ()
    #: Some argument is only known at run time: an expansion other than a leading
    #: ``~``/``$HOME``, or arguments appended by ``xargs`` / ``find -exec``.
    dynamic_args: bool = False
    #: What the command model makes of it (``None`` for a bare redirect with no command).
    judgement: Judgement | None = None
    #: The wrappers it runs through that jobgov does not model (``busybox``, ``strace`` ...).
    odd_wrappers: tuple[str, ...] = ()
    #: The command whose output is this one's input (the previous stage of its pipe).
    feeder: Segment | None = None


@dataclass(frozen=True, slots=True)
class ShellAnalysis:
    """Every simple command in a command line, or why it could not be parsed."""

    segments: tuple[Segment, ...] = field(default_factory=tuple)
    error: str | None = None
