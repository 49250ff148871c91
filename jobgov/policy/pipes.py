"""What ``xargs`` and ``find -exec`` append to their payload, read from who feeds them.

The appended words are paths inside the worktree only when they come from a command that
lists paths under static directories (``find .``, ``ls dir``, ``git ls-files``, ``rg -l``),
possibly through filters (``grep -v``, ``sort``, ``head``); otherwise they are unknown.
"""

from __future__ import annotations

from jobgov.policy import commands
from jobgov.policy.segments import Segment
from jobgov.policy.shellwords import Word


def fill_appended(core: list[Word], producer: Segment | None) -> list[Word]:
    """The words of an ``xargs``/``find -exec`` payload with what is appended made explicit.

    What is appended is a path of the producer's when the producer lists paths (``find .``,
    ``ls src``, ``git ls-files``, ``rg -l``) and they are static; otherwise it is unknown.
    """
    roots = _listed_roots(producer)
    if commands.command_name(core[0].text) in _RUNS_ITS_OPERAND:
        roots = []  # running what it finds (`find -exec sh {}`) runs files jobgov has not read
    filler = Word(roots[0]) if roots else Word("<appended by xargs or find>", dynamic=True)
    if "{}" in core[0].text:
        filler = Word("<appended by xargs or find>", dynamic=True)  # `find -exec ./{}` runs what it finds
    words = [(filler if w.text == "{}" else Word(w.text, True)) if "{}" in w.text and not w.dynamic else w
             for w in core]
    if not any(w.text == "{}" for w in core):
        words.append(filler)
    return words


#: Payloads that run the files appended to them as programs.
_RUNS_ITS_OPERAND = frozenset({"sh", "bash", "zsh", "dash", "ksh", "source", ".", "python", "node", "perl", "ruby",
                               "php", "lua", "deno", "bun", "exec", "{}", "./{}"})


#: Commands whose output is a list of paths under their operands, and the options that make it so.
_LISTERS: dict[str, tuple[str, ...]] = {
    "find": (), "ls": (), "fd": (), "fdfind": (), "git ls-files": (), "git ls-tree": ("--name-only",),
    "git diff": ("--name-only", "--name-status"),
    "rg": ("-l", "--files-with-matches", "--files", "-L", "--files-without-match"),
    "grep": ("-l", "--files-with-matches", "-L", "--files-without-match"),
}


#: Filters that pass on a subset (or an order) of their input lines when they read no file.
_FILTERS = frozenset({"grep", "egrep", "fgrep", "rg", "head", "tail", "sort", "uniq", "cat", "tac"})


def _has_flag(argv: tuple[str, ...], flag: str) -> bool:
    if flag.startswith("--"):
        return flag in argv
    return any(w.startswith("-") and not w.startswith("--") and flag[1] in w[1:] for w in argv[1:])


def _lists_paths(segment: Segment) -> bool:
    """The command prints paths (``find``, ``ls``, ``git ls-files``, ``rg -l`` ...)."""
    judged = segment.judgement
    if judged is None:
        return False
    key = " ".join(judged.plain[:2]) if judged.name == "git" else judged.name
    needs = _LISTERS.get(key)
    return needs is not None and (not needs or any(_has_flag(segment.argv, flag) for flag in needs))


def _listed_roots(producer: Segment | None, hops: int = 0) -> list[str]:
    """The static directories a producer lists paths under (empty: it does not list paths)."""
    judged = producer.judgement if producer is not None else None
    if producer is not None and judged is not None and judged.name in _FILTERS and hops < 8 \
            and not judged.unjudgeable and not [r for r in judged.paths if r.kind == "read"] \
            and not _lists_paths(producer) and not _has_flag(producer.argv, "-r") \
            and not _has_flag(producer.argv, "-R"):
        # `find . | grep -v x | xargs ...`: a filter over a list of paths is a list of those paths.
        return _listed_roots(producer.feeder, hops + 1)
    if producer is None or judged is None or not judged.known or judged.unjudgeable:
        return []
    if not _lists_paths(producer):
        return []
    reads = [ref for ref in judged.paths if ref.kind in ("read", "cd", "program")]
    if any(ref.dynamic for ref in reads):
        return []
    return [ref.raw for ref in reads if ref.kind == "read"] or ["."]

