"""The word level of shell analysis: words, the paths they name, ``cd`` and wrappers.

Helpers for :mod:`jobgov.policy.shell`, which walks the tree-sitter-bash parse
tree and calls these on each simple command:

* :func:`read_word` rebuilds a word from its node (quotes removed, escapes
  applied, expansions kept as written) with whether its value is only known
  at run time; :func:`flatten` does so for ``[[ … ]]``/``declare`` nodes.
* :func:`arg_path` picks out the arguments that name a filesystem location
  (:class:`PathRef`, as written, not yet resolved).
* :class:`Dir` and :func:`change_dir` follow ``cd``/``pushd``/``popd``.
* :func:`peel` strips wrappers (``sudo``, ``env -C dir`` …, see
  :mod:`jobgov.policy.commands`) and finds the shell strings a command runs.

Pure: no filesystem, no environment, no parsing of its own.
"""

from __future__ import annotations

import posixpath
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from tree_sitter import Node

from jobgov.policy import commands
from jobgov.policy.argv import Ref

PathKind = Literal["arg", "redirect-write", "redirect-read", "cd", "read", "write", "delete", "program"]


@dataclass(frozen=True, slots=True)
class PathRef:
    """A word that names a filesystem location, as written (not yet resolved)."""

    raw: str
    kind: PathKind
    #: The word holds an expansion other than a leading ``~`` or ``$HOME``/``${HOME}``
    #: (``$X/y``, ``$(pwd)/z``): its location cannot be known statically.
    dynamic: bool = False
    #: The word is a glob: it names every path it matches (expanded when judged).
    glob: bool = False
    #: The command follows symlinks below this path (``grep -R``, ``find -L``).
    follow: bool = False


_WORDS = frozenset({
    "word", "string", "raw_string", "ansi_c_string", "translated_string", "concatenation",
    "simple_expansion", "expansion", "command_substitution", "process_substitution",
    "arithmetic_expansion", "brace_expression",
})
#: Device files that are never a path worth judging.
HARMLESS = re.compile(r"/dev/(null|stdin|stdout|stderr|tty|fd/\d+)")
_HOME = re.compile(r"(\$HOME|\$\{HOME\})(/.*)?", re.S)
_REMOTE_WORD = re.compile(r"([\w.+-]+@)?[\w.-]+:.*", re.S)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_ESCAPE = re.compile(r"\\(.)", re.S)
_DQ_ESCAPE = re.compile(r'\\([$`"\\\n])')
_GLOB = re.compile(r"(?<!\\)[*?[]")
_STACK_TILDE = re.compile(r"~([+-]|[+-]?\d)")
#: Words whose braces jobgov expands itself (no quotes, escapes or expansions in them).
_BRACE_WORD = re.compile(r"[A-Za-z0-9_./:@%+=,{}*?\[\]-]+")
_BRACE_LIMIT = 256
_ANSI_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)", re.S)
_ANSI = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


# --- words ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Word:
    """A shell word with quotes removed and expansions kept as written."""

    text: str
    #: Value known only at run time (expansion other than a leading ``~``/``$HOME``, ``{a,b}``).
    dynamic: bool = False
    #: Holds unquoted glob characters.
    glob: bool = False


#: The bytes being parsed as written. The parser is given them with every non-ASCII byte replaced
#: by ``x`` (see :func:`ascii_shadow`), so node texts are read from here, by position.
SOURCE: ContextVar[bytes | None] = ContextVar("jobgov_shell_source", default=None)


def ascii_shadow(text: str) -> tuple[bytes, bytes]:
    """``text`` as UTF-8, and the same bytes with each non-ASCII byte replaced by ``x``.

    tree-sitter-bash's scanner passes code points to ``<ctype.h>`` functions that index a
    256-entry table: a large code point reads far outside it and can crash the process. Bash
    itself treats every non-ASCII byte as part of a word, so the shadow parses into the same
    tree, with the same byte positions, and no code point above 127 ever reaches the scanner.
    """
    raw = text.encode()
    return raw, raw.translate(_SHADOW)


_SHADOW = bytes(b if b < 0x80 else ord("x") for b in range(256))


def node_bytes(node: Node) -> bytes:
    """The bytes of ``node`` as written (not as shadowed)."""
    source = SOURCE.get()
    if source is None:
        return node.text or b""
    return source[node.start_byte : node.end_byte]


def node_text(node: Node) -> str:
    """The source text of ``node``."""
    return node_bytes(node).decode(errors="replace")


def _is_brace(unquoted: str) -> bool:
    return "{" in unquoted and "}" in unquoted and ("," in unquoted or ".." in unquoted)


def _ansi_char(match: re.Match[str]) -> str:
    esc = match.group(1)
    try:
        if esc[0] in "xuU":
            return chr(int(esc[1:], 16))
        if esc[0] in "01234567":
            return chr(int(esc, 8))
    except ValueError:
        return match.group(0)
    return chr(ord(esc[1]) & 0x1F) if esc[0] == "c" else _ANSI.get(esc, esc)


def read_word(node: Node, leading: bool = True) -> Word:
    """Rebuild the word ``node``; ``leading`` says it starts the whole word (for ``$HOME``)."""
    kind, text = node.type, node_text(node)
    if kind == "word":
        unescaped = _ESCAPE.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), text)
        # ``~+``, ``~-`` and ``~N`` are the directory stack ($PWD, $OLDPWD ...): known only at run time.
        stack_tilde = leading and bool(_STACK_TILDE.match(text))
        return Word(unescaped, dynamic=_is_brace(text) or stack_tilde, glob=bool(_GLOB.search(text)))
    if kind == "raw_string":
        return Word(text[1:-1])
    if kind == "ansi_c_string":
        return Word(_ANSI_ESCAPE.sub(_ansi_char, text[2:-1]))
    if node.child_count == 0:
        return Word(text)
    if kind == "translated_string":
        return read_word(node.children[-1], leading)
    if kind == "string":
        return _string(node, leading)
    if kind == "concatenation":
        parts = [read_word(child, leading and i == 0) for i, child in enumerate(node.children)]
        unquoted = "".join(node_text(c) for c in node.children if c.type == "word")
        return Word("".join(p.text for p in parts), any(p.dynamic for p in parts) or _is_brace(unquoted),
                     any(p.glob for p in parts))
    static_home = kind in ("simple_expansion", "expansion") and leading and text in ("$HOME", "${HOME}")
    return Word(text, dynamic=not static_home)


def _string(node: Node, leading: bool) -> Word:
    """A double-quoted string: text between the parts is literal (with ``\\`` escapes)."""
    raw, base = node_bytes(node), node.start_byte
    parts: list[str] = []
    dynamic, pos = False, 1
    for child in node.named_children:
        start, end = child.start_byte - base, child.end_byte - base
        parts.append(_DQ_ESCAPE.sub(r"\1", raw[pos:start].decode(errors="replace")))
        if child.type == "string_content":
            parts.append(_DQ_ESCAPE.sub(r"\1", node_text(child)))
        else:
            inner = read_word(child, leading and not "".join(parts))
            parts.append(inner.text)
            dynamic = dynamic or inner.dynamic
        pos = end
    parts.append(_DQ_ESCAPE.sub(r"\1", raw[pos:-1].decode(errors="replace")))
    return Word("".join(parts).replace("\\\n", ""), dynamic)


def expand_braces(node: Node) -> list[Word] | None:
    """Bash's brace expansion of a plain word (``src/{a,b}.py``, ``x{1..3}``), done statically.

    ``None`` when the word has no braces to expand, or braces jobgov does not expand (quotes,
    escapes or expansions inside, more than a few hundred results): it then stays dynamic.
    """
    text = node_text(node)
    if not _plain_parts(node) or not _is_brace(text) or not _BRACE_WORD.fullmatch(text):
        return None
    try:
        words = _braces(text)
    except ValueError:
        return None
    if words == [text]:
        return None
    return [Word(w, glob=bool(_GLOB.search(w))) for w in words]


def _plain_parts(node: Node) -> bool:
    """The word is made only of unquoted literal pieces (tree-sitter splits ``a{b,c}`` into several)."""
    if node.type in ("word", "number", "brace_expression"):
        return all(_plain_parts(child) for child in node.children) if node.type == "brace_expression" else True
    if node.type == "concatenation":
        return all(_plain_parts(child) for child in node.children)
    return node.type in ("{", "}", "..", ",")


def _braces(text: str) -> list[str]:
    """Expand the first brace group of ``text`` (then the rest, recursively); ValueError past the limit."""
    depth, start = 0, -1
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                inner = text[start + 1 : i]
                options = _brace_options(inner)
                if options is None:
                    rest = _braces(text[i + 1 :])
                    return [text[: i + 1] + r for r in rest]
                out: list[str] = []
                for option in options:
                    for tail in _braces(option + text[i + 1 :]):
                        out.append(text[:start] + tail)
                        if len(out) > _BRACE_LIMIT:
                            raise ValueError("too many")
                return out
    return [text]


def _brace_options(inner: str) -> list[str] | None:
    """The alternatives of one brace group: ``a,b`` or a sequence ``1..3``/``a..e``; ``None``: not one."""
    seq = re.fullmatch(r"(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?|([A-Za-z])\.\.([A-Za-z])", inner)
    if seq:
        if seq.group(4):
            a, b = ord(seq.group(4)), ord(seq.group(5))
            return [chr(c) for c in (range(a, b + 1) if a <= b else range(a, b - 1, -1))]
        a, b, step = int(seq.group(1)), int(seq.group(2)), abs(int(seq.group(3) or 1)) or 1
        if abs(b - a) // step > _BRACE_LIMIT:
            raise ValueError("too many")
        return [str(n) for n in (range(a, b + 1, step) if a <= b else range(a, b - 1, -step))]
    parts, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current += ch
    parts.append(current)
    return parts if len(parts) > 1 else None


def flatten(node: Node) -> list[Word]:
    """The words of a ``[[ … ]]``/``declare …`` node, assignments kept whole."""
    if node.type == "variable_assignment":
        value = node.child_by_field_name("value")
        word = read_word(value) if value is not None else Word("")
        head = "".join(node_text(c) for c in node.children if c != value)
        return [Word(head + word.text, word.dynamic)]
    if node.child_count == 0 or node.type in _WORDS:
        return [read_word(node)]
    first = node.children[0]
    if first.type == "~" and node.child_count == 2 and first.end_byte == node.children[1].start_byte:
        rest = read_word(node.children[1])  # tree-sitter reads `[ -d ~/x ]` as bitwise-not of `/x`
        return [Word("~" + rest.text, rest.dynamic, rest.glob)]
    return [word for child in node.children for word in flatten(child)]


def join_words(words: list[Word], start: Ref, end: int) -> Word | None:
    """Words ``start..end`` joined by spaces (the first from a character offset)."""
    index, offset = start
    if index >= len(words):
        return None
    chosen = [Word(words[index].text[offset:], words[index].dynamic), *words[index + 1 : end]]
    return Word(" ".join(w.text for w in chosen), any(w.dynamic for w in chosen))


# --- paths ------------------------------------------------------------------------


def _path_value(text: str) -> str | None:
    """The part of an argument that names a path, if any (``--out=x/y`` → ``x/y``)."""
    if text.startswith("--"):
        _, eq, text = text.partition("=")
        if not eq:
            return None
    elif text.startswith("-"):
        text = text[2:]
    elif _ASSIGNMENT.match(text):
        text = text.partition("=")[2]
    if text in (".", "..") or text.startswith(("/", "~")) or "/" in text or _HOME.fullmatch(text):
        return text
    return None


def arg_path(word: Word, remote_syntax: bool) -> PathRef | None:
    """A :class:`PathRef` for an argument that looks like a path."""
    if "://" in word.text or (remote_syntax and _REMOTE_WORD.fullmatch(word.text) and "/" not in
                              word.text.partition(":")[0]):
        return None
    value = _path_value(word.text)
    if value is None or HARMLESS.fullmatch(value):
        return None
    return PathRef(value, "arg", word.dynamic)


# --- working directory ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dir:
    """The directory later commands resolve against, as raw ``cd`` targets."""

    path: str | None = None
    dynamic: bool = False
    stack: tuple[tuple[str | None, bool], ...] = ()

    def enter(self, target: Word | None) -> Dir:
        """The directory after ``cd target`` (``None``: no argument, i.e. ``~``)."""
        if target is None:
            return Dir("~", False, self.stack)
        text = target.text
        if text == "-":
            return Dir("$OLDPWD", True, self.stack)
        if text.startswith(("/", "~")) or _HOME.fullmatch(text) or (target.dynamic and text[:1] in "$`"):
            return Dir(text, target.dynamic, self.stack)
        joined = posixpath.join(self.path, text) if self.path else text
        return Dir(joined, self.dynamic or target.dynamic, self.stack)

    def pushed(self, target: Word) -> Dir:
        new = self.enter(target)
        return Dir(new.path, new.dynamic, ((self.path, self.dynamic), *self.stack))

    def popped(self) -> Dir:
        if not self.stack:
            return Dir("${DIRSTACK[1]}", True)
        (path, dynamic), *rest = self.stack
        return Dir(path, dynamic, tuple(rest))


def change_dir(cwd: Dir, argv: list[Word]) -> tuple[Dir, list[PathRef]]:
    """Apply ``cd``/``pushd``/``popd``: the new directory and the ``cd`` path reference."""
    name, ops, options_done = argv[0].text, [], False
    for word in argv[1:]:
        if not options_done and word.text == "--":
            options_done = True
        elif options_done or not re.fullmatch(r"-[A-Za-z@]+", word.text):
            ops.append(word)
    if name == "popd":
        if cwd.stack and not ops:
            return cwd.popped(), []  # back to a directory already judged
        return Dir("${DIRSTACK[1]}", True), [PathRef("${DIRSTACK[1]}", "cd", True)]
    target = ops[0] if ops else None
    if name == "pushd" and target is None:  # swap the top two directories
        top = cwd.popped()
        return Dir(top.path, top.dynamic, ((cwd.path, cwd.dynamic), *top.stack)), []
    if name == "pushd" and target is not None and re.fullmatch(r"[+-]\d+", target.text):  # rotate the stack
        return Dir("${DIRSTACK[0]}", True, cwd.stack), [PathRef(target.text, "cd", True)]
    ref = PathRef(target.text if target else "~", "cd", target is not None and (target.dynamic or target.text == "-"))
    return (cwd.pushed(target) if name == "pushd" and target else cwd.enter(target)), [ref]


# --- wrappers and shell strings ------------------------------------------------------------


@dataclass(slots=True)
class Peeled:
    """A simple command with its wrappers taken off."""

    core: list[Word]
    cwd: Dir
    wrappers: list[str] = field(default_factory=list)
    #: Shell strings it runs, with the command running them (``None``: read from stdin).
    scripts: list[tuple[Word | None, str]] = field(default_factory=list)
    #: Words that are not path arguments: command names, wrapper assignments, shell strings.
    skip: list[Word] = field(default_factory=list)


def peel(words: list[Word], cwd: Dir, stdin: Word | None) -> Peeled:
    """Strip wrappers (``sudo``, ``env -C dir`` …) and find the shell strings the command runs."""
    peeled = Peeled(words, cwd, skip=[words[0]])
    while (unwrapped := commands.unwrap([w.text for w in peeled.core])) is not None:
        core = peeled.core
        if unwrapped.chdir is not None and (target := join_words(core, unwrapped.chdir, unwrapped.chdir[0] + 1)):
            peeled.cwd = peeled.cwd.enter(target)
        if unwrapped.script is not None:  # watch 'cmd', flock f -c 'cmd', su -c 'cmd'
            (index, _), end = unwrapped.script
            peeled.scripts.append((join_words(core, *unwrapped.script), core[0].text))
            peeled.skip += core[index:end]
            return peeled
        name = commands.command_name(core[0].text)
        own = [w.text for w in core[1 : unwrapped.command]]
        if name == "sudo" and any(o in ("-A", "--askpass") or (o[:1] == "-" and o[1:2] != "-" and "A" in o)
                                  for o in own):
            name = "sudo -A"  # runs the askpass program named by the environment: not a plain sudo
        peeled.wrappers.append(name)
        peeled.skip += [w for w in core[1 : unwrapped.command] if _ASSIGNMENT.match(w.text)]
        peeled.core = core[unwrapped.command :]
        peeled.skip.append(peeled.core[0])
    script = commands.shell_script([w.text for w in peeled.core])
    if script is not None:  # bash -c 'cmd', eval 'cmd', sh <<EOF
        source = join_words(peeled.core, script.start, script.end) if script.source == "string" else stdin
        peeled.scripts.append((source, peeled.core[0].text))
        peeled.skip += peeled.core[script.start[0] : script.end]
    return peeled
