"""The small programs some commands take as an argument: sed scripts and awk programs.

A sed script can run commands (``e``, the ``s///e`` flag) and write files (``w``,
``W``, ``s///w FILE``); an awk program can run commands (``system()``, pipes) and
write files (``print > FILE``). These scanners read just enough of each language to
tell; whatever they cannot read is reported as unjudgeable, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: sed commands that take no argument.
_SED_SIMPLE = frozenset("=dDgGhHlnNpPxzF")
#: sed commands whose argument runs to the end of the line.
_SED_TEXT = frozenset("aic")
_SED_LABEL = frozenset("btT:")
_SED_FILE_READ = frozenset("rR")
_SED_FILE_WRITE = frozenset("wW")


@dataclass
class SedFacts:
    """What a sed script does besides editing its input."""

    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    runs: bool = False
    """It runs shell commands (``e``, ``s///e``)."""
    problem: str | None = None
    """Why it cannot be read (then nothing else about it is known)."""


def scan_sed(script: str) -> SedFacts:
    """Scan a sed script (GNU sed syntax) for commands, file reads and writes."""
    facts = SedFacts()
    i, n = 0, len(script)

    def line_rest(start: int) -> tuple[str, int]:
        end = script.find("\n", start)
        end = n if end < 0 else end
        return script[start:end].strip(), end + 1

    while i < n:
        ch = script[i]
        if ch in " \t\n;}!{" or ch.isdigit() or ch in "$,~+":
            i += 1
            continue
        if ch == "#":
            i = script.find("\n", i)
            i = n if i < 0 else i + 1
            continue
        if ch in "/\\":  # an address regex: /re/ or \cREc
            delim = "/" if ch == "/" else (script[i + 1] if i + 1 < n else "")
            i = _skip_delimited(script, i + (1 if ch == "/" else 2), delim)
            if i < 0:
                return SedFacts(problem="unterminated address")
            while i < n and script[i] in "IM":
                i += 1
            continue
        if ch in _SED_SIMPLE:
            i += 1
        elif ch in "qQlL":
            i += 1
            while i < n and script[i].isdigit():
                i += 1
        elif ch in _SED_TEXT:
            _, i = line_rest(i + 1)
        elif ch in _SED_LABEL:
            j = i + 1
            while j < n and script[j] not in ";\n":
                j += 1
            i = j
        elif ch in _SED_FILE_READ or ch in _SED_FILE_WRITE:
            name, i = line_rest(i + 1)
            if not name:
                return SedFacts(problem=f"sed {ch} without a file name")
            (facts.reads if ch in _SED_FILE_READ else facts.writes).append(name)
        elif ch == "e":
            facts.runs = True
            _, i = line_rest(i + 1)
        elif ch in "sy":
            if i + 1 >= n:
                return SedFacts(problem=f"unterminated {ch} command")
            delim = script[i + 1]
            if delim in "\n\\":
                return SedFacts(problem=f"bad delimiter in {ch} command")
            j = _skip_delimited(script, i + 2, delim)
            j = _skip_delimited(script, j, delim) if j >= 0 else -1
            if j < 0:
                return SedFacts(problem=f"unterminated {ch} command")
            i = j
            if ch == "s":
                while i < n and script[i] not in ";\n}":
                    flag = script[i]
                    if flag == "e":
                        facts.runs = True
                    elif flag == "w":
                        name, i = line_rest(i + 1)
                        if not name:
                            return SedFacts(problem="s///w without a file name")
                        facts.writes.append(name)
                        continue
                    elif not (flag in "gpiImM" or flag.isdigit() or flag in " \t"):
                        return SedFacts(problem=f"unknown s flag {flag!r}")
                    i += 1
        else:
            return SedFacts(problem=f"unknown sed command {ch!r}")
    return facts


def _skip_delimited(text: str, start: int, delim: str) -> int:
    """Index just past the unescaped ``delim`` at or after ``start`` (-1: none)."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == delim:
            return i + 1
        if text[i] == "\n" and delim != "\n":
            return -1
        i += 1
    return -1


#: awk words that run commands or open files: any of them makes a program unjudgeable.
_AWK_DANGER = re.compile(r"\b(system|getline|close|fflush)\b|\|")
#: String literals are data (a regex literal is not stripped: ``a / b; system(x) / c`` is no regex).
_AWK_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"')
_AWK_PRINT_REDIRECT = re.compile(r"\bprintf?\b[^;{}\n]*>")


def awk_problem(program: str) -> str | None:
    """Why an awk program may run commands or write files (``None``: it only reads and prints)."""
    code = _AWK_STRINGS.sub('""', program)  # strings cannot run anything
    if "@load" in code or "@include" in code:
        return "awk program loads an extension or another program (@load, @include)"
    if _AWK_DANGER.search(code):
        return "awk program runs commands or reads other files (system, getline, pipes)"
    if _AWK_PRINT_REDIRECT.search(code):
        return "awk program writes to a file (print >)"
    return None
