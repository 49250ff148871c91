"""Reading a command's argv getopt-style: options, their values, operands.

Plain functions over lists of words, used by the command tables and by the
per-command logic alike (so the tables can import them at module level).
"""

from __future__ import annotations

from collections.abc import Sequence

Argv = Sequence[str]
#: A position inside argv: (word index, character offset of the value).
Ref = tuple[int, int]


def read_option(argv: Argv, i: int, value_opts: frozenset[str]) -> tuple[list[str], Ref | None, int]:
    """Read the option word ``argv[i]`` getopt-style.

    Returns:
        The option names it holds, where its value is (if it takes one) and
        the index of the next word.
    """
    word = argv[i]
    if word.startswith("--"):
        name, eq, _ = word.partition("=")
        if eq:
            return [name], (i, len(name) + 1), i + 1
        return ([name], (i + 1, 0), i + 2) if name in value_opts else ([name], None, i + 1)
    names: list[str] = []
    for j in range(1, len(word)):
        names.append("-" + word[j])
        if names[-1] in value_opts:
            return (names, (i, j + 1), i + 1) if j + 1 < len(word) else (names, (i + 1, 0), i + 2)
    return names, None, i + 1


def skip_options(argv: Argv, start: int, value_opts: frozenset[str] = frozenset()) -> int:
    """Index of the first operand at or after ``start``."""
    i = start
    while i < len(argv):
        if argv[i] == "--":
            return i + 1
        if not argv[i].startswith("-") or argv[i] == "-":
            return i
        i = read_option(argv, i, value_opts)[2]
    return min(i, len(argv))  # an option missing its value at the end stops at the end


def operands(args: Argv, value_opts: frozenset[str] = frozenset()) -> list[str]:
    """The non-option words of ``args`` (options and their values dropped)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        i = skip_options(args, i, value_opts)
        if i < len(args):
            out.append(args[i])
            i += 1
    return out
