"""Parse shell commands into the simple commands they would run (tree-sitter-bash).

Pure: no filesystem, no environment. Path resolution (``~``, ``$HOME``,
``..``, symlinks) happens later in :mod:`jobgov.policy.normalize`, which is
the activity-side step; this module only reports the raw path words.

Approach:

1. tree-sitter-bash parses the line. Any ERROR or MISSING node sets
   :attr:`ShellAnalysis.error`, but the tree is still walked so the caller sees
   whatever commands were recognisable.
2. :class:`_Analyzer` walks the tree in execution order. Command and process
   substitutions are found wherever they sit (words, strings, assignments,
   redirect targets, heredoc bodies) and walked before the command that
   contains them, as the shell expands them first.
3. Words are rebuilt from the tree (:func:`_word`: quotes removed, escapes
   applied, expansions kept as written) together with whether their value is
   only known at run time.
4. Each simple command is peeled of wrappers (``sudo``, ``env``, ``timeout`` …,
   see :mod:`jobgov.policy.commands`); commands it spawns (``xargs``,
   ``find -exec``, ``uv run``) and shell strings it runs (``bash -c``,
   ``eval``, ``watch``, ``flock -c``, a heredoc fed to ``sh``) are analysed
   recursively into further segments.
5. ``cd``/``pushd``/``popd`` thread a :class:`_Dir` through sequential lists;
   subshells, pipelines, substitutions and background jobs keep their own.

A redirect with no command to carry it (``> f``, ``{ …; } > f``) is reported
as a segment with an empty ``argv``. Bare assignments (``X=1``) and the
arguments of ``export``/``declare``/``unset`` carry no paths.

INTERFACE: ``analyze(command: str) -> ShellAnalysis``
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Literal

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from jobgov.policy import commands

PathKind = Literal["arg", "redirect-write", "redirect-read", "cd"]


@dataclass(frozen=True, slots=True)
class PathRef:
    """A word that names a filesystem location, as written (not yet resolved)."""

    raw: str
    kind: PathKind
    #: The word holds an expansion other than a leading ``~`` or ``$HOME``/``${HOME}``
    #: (``$X/y``, ``$(pwd)/z``): its location cannot be known statically.
    dynamic: bool = False


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


@dataclass(frozen=True, slots=True)
class ShellAnalysis:
    """Every simple command in a command line, or why it could not be parsed."""

    segments: tuple[Segment, ...] = field(default_factory=tuple)
    error: str | None = None


_PARSER = Parser(Language(tree_sitter_bash.language()))
_MAX_DEPTH = 8
_REDIRECTS = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_OWN_SCOPE = frozenset({"subshell", "command_substitution", "process_substitution", "function_definition"})
_BUILTINS = frozenset({"test_command", "declaration_command", "unset_command"})
_WORDS = frozenset({
    "word", "string", "raw_string", "ansi_c_string", "translated_string", "concatenation",
    "simple_expansion", "expansion", "command_substitution", "process_substitution",
    "arithmetic_expansion", "brace_expression",
})
_REMOTE_SYNTAX = frozenset({"scp", "rsync", "sftp", "git", "ssh", "rclone"})
_HARMLESS = re.compile(r"/dev/(null|stdin|stdout|stderr|tty|fd/\d+)")
_HOME = re.compile(r"(\$HOME|\$\{HOME\})(/.*)?", re.S)
_REMOTE_WORD = re.compile(r"([\w.+-]+@)?[\w.-]+:.*", re.S)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_ESCAPE = re.compile(r"\\(.)", re.S)
_DQ_ESCAPE = re.compile(r'\\([$`"\\\n])')
_GLOB = re.compile(r"(?<!\\)[*?[]")
_ANSI_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)", re.S)
_ANSI = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


# --- words ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Word:
    """A shell word with quotes removed and expansions kept as written."""

    text: str
    #: Value known only at run time (expansion other than a leading ``~``/``$HOME``, ``{a,b}``).
    dynamic: bool = False
    #: Holds unquoted glob characters.
    glob: bool = False


#: Marks stdin redirected from a file (``sh < script.sh``): a script we cannot read.
_FROM_FILE = _Word("<file>")


def _text(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")


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


def _word(node: Node, leading: bool = True) -> _Word:
    """Rebuild the word ``node``; ``leading`` says it starts the whole word (for ``$HOME``)."""
    kind, text = node.type, _text(node)
    if kind == "word":
        unescaped = _ESCAPE.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), text)
        return _Word(unescaped, dynamic=_is_brace(text), glob=bool(_GLOB.search(text)))
    if kind == "raw_string":
        return _Word(text[1:-1])
    if kind == "ansi_c_string":
        return _Word(_ANSI_ESCAPE.sub(_ansi_char, text[2:-1]))
    if node.child_count == 0:
        return _Word(text)
    if kind == "translated_string":
        return _word(node.children[-1], leading)
    if kind == "string":
        return _string(node, leading)
    if kind == "concatenation":
        parts = [_word(child, leading and i == 0) for i, child in enumerate(node.children)]
        unquoted = "".join(_text(c) for c in node.children if c.type == "word")
        return _Word("".join(p.text for p in parts), any(p.dynamic for p in parts) or _is_brace(unquoted),
                     any(p.glob for p in parts))
    static_home = kind in ("simple_expansion", "expansion") and leading and text in ("$HOME", "${HOME}")
    return _Word(text, dynamic=not static_home)


def _string(node: Node, leading: bool) -> _Word:
    """A double-quoted string: text between the parts is literal (with ``\\`` escapes)."""
    raw, base = node.text or b"", node.start_byte
    parts: list[str] = []
    dynamic, pos = False, 1
    for child in node.named_children:
        start, end = child.start_byte - base, child.end_byte - base
        parts.append(_DQ_ESCAPE.sub(r"\1", raw[pos:start].decode(errors="replace")))
        if child.type == "string_content":
            parts.append(_DQ_ESCAPE.sub(r"\1", _text(child)))
        else:
            inner = _word(child, leading and not "".join(parts))
            parts.append(inner.text)
            dynamic = dynamic or inner.dynamic
        pos = end
    parts.append(_DQ_ESCAPE.sub(r"\1", raw[pos:-1].decode(errors="replace")))
    return _Word("".join(parts).replace("\\\n", ""), dynamic)


def _flatten(node: Node) -> list[_Word]:
    """The words of a ``[[ … ]]``/``declare …`` node, assignments kept whole."""
    if node.type == "variable_assignment":
        value = node.child_by_field_name("value")
        word = _word(value) if value is not None else _Word("")
        head = "".join(_text(c) for c in node.children if c != value)
        return [_Word(head + word.text, word.dynamic)]
    if node.child_count == 0 or node.type in _WORDS:
        return [_word(node)]
    first = node.children[0]
    if first.type == "~" and node.child_count == 2 and first.end_byte == node.children[1].start_byte:
        rest = _word(node.children[1])  # tree-sitter reads `[ -d ~/x ]` as bitwise-not of `/x`
        return [_Word("~" + rest.text, rest.dynamic, rest.glob)]
    return [word for child in node.children for word in _flatten(child)]


def _join(words: list[_Word], start: commands.Ref, end: int) -> _Word | None:
    """Words ``start..end`` joined by spaces (the first from a character offset)."""
    index, offset = start
    if index >= len(words):
        return None
    chosen = [_Word(words[index].text[offset:], words[index].dynamic), *words[index + 1 : end]]
    return _Word(" ".join(w.text for w in chosen), any(w.dynamic for w in chosen))


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


def _arg_path(word: _Word, remote_syntax: bool) -> PathRef | None:
    """A :class:`PathRef` for an argument that looks like a path."""
    if "://" in word.text or (remote_syntax and _REMOTE_WORD.fullmatch(word.text) and "/" not in
                              word.text.partition(":")[0]):
        return None
    value = _path_value(word.text)
    if value is None or _HARMLESS.fullmatch(value):
        return None
    return PathRef(value, "arg", word.dynamic)


# --- working directory ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Dir:
    """The directory later commands resolve against, as raw ``cd`` targets."""

    path: str | None = None
    dynamic: bool = False
    stack: tuple[tuple[str | None, bool], ...] = ()

    def enter(self, target: _Word | None) -> _Dir:
        """The directory after ``cd target`` (``None``: no argument, i.e. ``~``)."""
        if target is None:
            return _Dir("~", False, self.stack)
        text = target.text
        if text == "-":
            return _Dir("$OLDPWD", True, self.stack)
        if text.startswith(("/", "~")) or _HOME.fullmatch(text) or (target.dynamic and text[:1] in "$`"):
            return _Dir(text, target.dynamic, self.stack)
        joined = posixpath.join(self.path, text) if self.path else text
        return _Dir(joined, self.dynamic or target.dynamic, self.stack)

    def pushed(self, target: _Word) -> _Dir:
        new = self.enter(target)
        return _Dir(new.path, new.dynamic, ((self.path, self.dynamic), *self.stack))

    def popped(self) -> _Dir:
        if not self.stack:
            return _Dir("${DIRSTACK[1]}", True)
        (path, dynamic), *rest = self.stack
        return _Dir(path, dynamic, tuple(rest))


def _change_dir(cwd: _Dir, argv: list[_Word]) -> tuple[_Dir, list[PathRef]]:
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
        return _Dir("${DIRSTACK[1]}", True), [PathRef("${DIRSTACK[1]}", "cd", True)]
    target = ops[0] if ops else None
    if name == "pushd" and target is None:  # swap the top two directories
        top = cwd.popped()
        return _Dir(top.path, top.dynamic, ((cwd.path, cwd.dynamic), *top.stack)), []
    if name == "pushd" and re.fullmatch(r"[+-]\d+", target.text):  # rotate the stack
        return _Dir("${DIRSTACK[0]}", True, cwd.stack), [PathRef(target.text, "cd", True)]
    ref = PathRef(target.text if target else "~", "cd", bool(target) and (target.dynamic or target.text == "-"))
    return (cwd.pushed(target) if name == "pushd" and target else cwd.enter(target)), [ref]


# --- wrappers and shell strings ------------------------------------------------------------


@dataclass(slots=True)
class _Peeled:
    """A simple command with its wrappers taken off."""

    core: list[_Word]
    cwd: _Dir
    wrappers: list[str] = field(default_factory=list)
    #: Shell strings it runs, with the command running them (``None``: read from stdin).
    scripts: list[tuple[_Word | None, str]] = field(default_factory=list)
    #: Words that are not path arguments: command names, wrapper assignments, shell strings.
    skip: list[_Word] = field(default_factory=list)


def _peel(words: list[_Word], cwd: _Dir, stdin: _Word | None) -> _Peeled:
    """Strip wrappers (``sudo``, ``env -C dir`` …) and find the shell strings the command runs."""
    peeled = _Peeled(words, cwd, skip=[words[0]])
    while (unwrapped := commands.unwrap([w.text for w in peeled.core])) is not None:
        core = peeled.core
        if unwrapped.chdir is not None and (target := _join(core, unwrapped.chdir, unwrapped.chdir[0] + 1)):
            peeled.cwd = peeled.cwd.enter(target)
        if unwrapped.script is not None:  # watch 'cmd', flock f -c 'cmd', su -c 'cmd'
            (index, _), end = unwrapped.script
            peeled.scripts.append((_join(core, *unwrapped.script), core[0].text))
            peeled.skip += core[index:end]
            return peeled
        peeled.wrappers.append(commands.command_name(core[0].text))
        peeled.skip += [w for w in core[1 : unwrapped.command] if _ASSIGNMENT.match(w.text)]
        peeled.core = core[unwrapped.command :]
        peeled.skip.append(peeled.core[0])
    script = commands.shell_script([w.text for w in peeled.core])
    if script is not None:  # bash -c 'cmd', eval 'cmd', sh <<EOF
        source = _join(peeled.core, script.start, script.end) if script.source == "string" else stdin
        peeled.scripts.append((source, peeled.core[0].text))
        peeled.skip += peeled.core[script.start[0] : script.end]
    return peeled


# --- the walk ---------------------------------------------------------------------------


def _first_error(node: Node) -> Node | None:
    """The first ERROR or MISSING node under ``node``, if any."""
    if node.type == "ERROR" or node.is_missing:
        return node
    if not node.has_error:
        return None
    return next((bad for child in node.children if (bad := _first_error(child)) is not None), None)


def _matching_paren(text: str, start: int, tries: int = 64) -> int | None:
    """Index of the ``)`` closing a ``$(`` whose contents begin at ``start``.

    The first ``)`` after which the contents parse cleanly; ``None`` after ``tries`` failures.
    """
    end = text.find(")", start)
    for _ in range(tries):
        if end < 0 or not _PARSER.parse(text[start:end].encode()).root_node.has_error:
            return end if end >= 0 else None
        end = text.find(")", end + 1)
    return None


class _Analyzer:
    """Walks parse trees, collecting segments and errors."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.errors: list[str] = []
        self._src = b""
        self._depth = 0

    def error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)

    def source(self, text: str, cwd: _Dir, what: str | None = None) -> None:
        """Parse and walk ``text``; ``what`` names the nested string (``None``: the command line)."""
        prefix = f"{what}: " if what else ""
        if self._depth > _MAX_DEPTH:
            self.error(f"{prefix}commands nested too deeply")
            return
        src = text.encode()
        root = _PARSER.parse(src).root_node
        bad = _first_error(root)
        if bad is not None:
            row, col = bad.start_point
            self.error(f"{prefix}syntax error at line {row + 1}, column {col + 1}")
        saved, self._src = self._src, src
        self._depth += 1
        try:
            self.walk(root, cwd)
        finally:
            self._src = saved
            self._depth -= 1

    def walk(self, node: Node, cwd: _Dir) -> _Dir:
        """Walk ``node`` starting in ``cwd``; return the directory it leaves behind."""
        kind = node.type
        if kind == "command":
            return self._command(node, cwd, [], node.end_byte)
        if kind == "redirected_statement":
            return self._redirected(node, cwd)
        if kind == "pipeline":
            return self._pipeline(node, cwd, [], node)
        if kind == "list":
            return self._list(node, cwd)
        if kind in _OWN_SCOPE:
            self._sequence(node, cwd)
            return cwd
        if kind == "heredoc_redirect":
            self._heredoc(node, cwd)
            return cwd
        if kind in _BUILTINS:
            self._sequence(node, cwd)
            self._builtin(node, cwd)
            return cwd
        return self._sequence(node, cwd)

    def _sequence(self, node: Node, cwd: _Dir) -> _Dir:
        """Walk children in order, threading the directory (not past a ``&`` job)."""
        children = node.children
        for i, child in enumerate(children):
            after = self.walk(child, cwd)
            if not (i + 1 < len(children) and children[i + 1].type == "&"):
                cwd = after
        return cwd

    def _list(self, node: Node, cwd: _Dir) -> _Dir:
        """``a && b || c``: nested to the left by tree-sitter, walked flat (long chains are deep)."""
        stack, flat = [node], []
        while stack:
            top = stack.pop()
            if top.type == "list":
                stack.extend(reversed(top.children))
            else:
                flat.append(top)
        for child in flat:
            cwd = self.walk(child, cwd)
        return cwd

    def _redirected(self, node: Node, cwd: _Dir) -> _Dir:
        """A statement with redirects; they belong to its rightmost simple command, if any."""
        body = node.child_by_field_name("body")
        redirects = node.children_by_field_name("redirect")
        for redirect in redirects:
            self.walk(redirect, cwd)
        if body is None:  # `> file` alone
            self._emit(_text(node), [], cwd, self._redirects(redirects)[0])
            return cwd
        return self._carry(body, cwd, redirects, node)

    def _carry(self, node: Node, cwd: _Dir, redirects: list[Node], stmt: Node) -> _Dir:
        """Walk ``node``, handing ``redirects`` to its rightmost simple command.

        tree-sitter hangs ``a && b > f`` and ``a | b > f`` on the whole list or
        pipeline, but bash applies the redirect to ``b`` alone. A compound body
        (``{ …; } > f``) gets a segment of its own with an empty argv.
        """
        if node.type == "command":
            return self._command(node, cwd, redirects, stmt.end_byte)
        if node.type == "pipeline":
            return self._pipeline(node, cwd, redirects, stmt)
        if node.type in ("list", "negated_command"):
            last = node.named_children[-1]
            for child in node.children[: node.children.index(last)]:
                cwd = self.walk(child, cwd)
            return self._carry(last, cwd, redirects, stmt)
        refs, _, _ = self._redirects(redirects)
        if refs:
            self._emit(_text(stmt), [], cwd, refs)
        return self.walk(node, cwd)

    def _pipeline(self, node: Node, cwd: _Dir, redirects: list[Node], stmt: Node) -> _Dir:
        """Stages run side by side, each in a subshell, so none changes the directory.

        Except that tree-sitter reads ``a && b < f | c`` as ``(a && b < f) | c``
        where bash runs ``a && (b < f | c)``: such a leading list runs first.
        """
        *stages, last = node.named_children
        after = cwd
        for i, stage in enumerate(stages):
            body = stage.child_by_field_name("body") if stage.type == "redirected_statement" else None
            if i == 0 and body is not None and body.type == "list":
                after = cwd = self.walk(stage, cwd)
            else:
                self.walk(stage, cwd)
        self._carry(last, cwd, redirects, stmt)
        return after

    def _command(self, node: Node, cwd: _Dir, outer: list[Node], end: int) -> _Dir:
        """A simple command; ``outer`` are redirects tree-sitter hung on an enclosing statement."""
        for child in node.children:
            self.walk(child, cwd)
        words: list[_Word] = []
        redirects = list(outer)
        for child in node.children:
            if child.type in _REDIRECTS:
                redirects.append(child)
            elif child.type == "command_name":
                words += [_word(c) for c in child.children[:1] if not c.is_missing]
            elif child.is_named and child.type != "variable_assignment":
                words.append(_word(child))
        refs, extra, stdin = self._redirects(redirects)
        text = self._src[node.start_byte : end].decode(errors="replace")
        return self._simple(words + extra, text, cwd, refs, stdin)

    def _redirects(self, nodes: list[Node]) -> tuple[list[PathRef], list[_Word], _Word | None]:
        """Paths of redirects, stray words after a target (``> f arg``) and what stdin holds."""
        refs: list[PathRef] = []
        extra: list[_Word] = []
        stdin: _Word | None = None
        for node in nodes:
            if node.type == "heredoc_redirect":
                stdin = _Word(self._heredoc_body(node))
                more, words, _ = self._redirects([c for c in node.children if c.type in _REDIRECTS])
                refs += more
                extra += words
            elif node.type == "herestring_redirect":
                stdin = _word(node.named_children[0]) if node.named_children else _Word("")
            else:
                dests = node.children_by_field_name("destination")
                extra += [_word(d) for d in dests[1:]]
                ref = self._file_redirect(node, dests[0]) if dests else None
                if ref is not None:
                    refs.append(ref)
                    fd = node.child_by_field_name("descriptor")
                    if ref.kind == "redirect-read" and (fd is None or _text(fd) == "0"):
                        stdin = _FROM_FILE
        return refs, extra, stdin

    @staticmethod
    def _file_redirect(node: Node, dest: Node) -> PathRef | None:
        """The file a ``>``/``<``-style redirect opens (not fd duplication or devices)."""
        op = next((_text(c) for c in node.children if not c.is_named), "")
        if dest.type == "process_substitution" or op in ("<&", "<&-", ">&-"):
            return None
        if op == ">&" and dest.type == "number":
            return None
        word = _word(dest)
        if not word.dynamic and _HARMLESS.fullmatch(word.text):
            return None
        return PathRef(word.text, "redirect-read" if op == "<" else "redirect-write", word.dynamic)

    def _heredoc_body(self, node: Node) -> str:
        body = next((c for c in node.children if c.type == "heredoc_body"), None)
        text = _text(body) if body is not None else ""
        if any(_text(c) == "<<-" for c in node.children):
            text = re.sub(r"(?m)^\t+", "", text)
        return text

    def _heredoc(self, node: Node, cwd: _Dir) -> None:
        """Command substitutions in an unquoted heredoc body run when the redirect is set up.

        tree-sitter-bash parses them only sometimes (never backticks, not after
        leading blanks), so the body is scanned here and each substitution parsed.
        """
        for child in node.children:
            if child.type != "heredoc_body":
                self.walk(child, cwd)
        start = next((c for c in node.children if c.type == "heredoc_start"), None)
        if start is not None and any(q in _text(start) for q in "'\"\\"):
            return
        text, i = self._heredoc_body(node), 0
        while i < len(text):
            if text[i] == "\\":
                i += 2
            elif text[i] == "`":
                end = text.find("`", i + 1)
                while end > 0 and text[end - 1] == "\\":
                    end = text.find("`", end + 1)
                if end < 0:
                    self.error("heredoc: unterminated backquote")
                    return
                self.source(re.sub(r"\\([$`\\])", r"\1", text[i + 1 : end]), cwd, "heredoc")
                i = end + 1
            elif text.startswith("$(", i) and not text.startswith("$((", i):
                close = _matching_paren(text, i + 2)
                if close is None:
                    self.error("heredoc: unterminated command substitution")
                    return
                self.source(text[i + 2 : close], cwd, "heredoc")
                i = close + 1
            else:
                i += 1

    def _builtin(self, node: Node, cwd: _Dir) -> None:
        """``[[ … ]]``, ``[ … ]``, ``export``/``declare``/``local``/``unset`` as segments."""
        words = _flatten(node)
        paths = [ref for w in words[1:] if (ref := _arg_path(w, False))] if node.type == "test_command" else []
        self._emit(_text(node), words, cwd, paths)

    def _emit(self, text: str, core: list[_Word], cwd: _Dir, paths: list[PathRef],
              wrappers: tuple[str, ...] = (), appended: bool = False) -> None:
        argv = tuple(w.text for w in core)
        install, network = commands.classify(argv)
        self.segments.append(Segment(
            text, argv, cwd.path, tuple(paths), install, network, cwd.dynamic, wrappers,
            appended or any(w.dynamic for w in core[1:]),
        ))

    def _simple(self, words: list[_Word], text: str, cwd: _Dir, refs: list[PathRef],
                stdin: _Word | None, appended: bool = False) -> _Dir:
        """Emit the segment(s) of one simple command; return the directory after it."""
        if not words:
            if refs:
                self._emit(text, [], cwd, refs)
            return cwd
        peeled = _peel(words, cwd, stdin)
        core, local = peeled.core, peeled.cwd
        name = commands.command_name(core[0].text)
        if core[0].dynamic or core[0].glob:
            self.error(f"cannot tell which command runs: {core[0].text}")
        after = cwd
        if name in ("cd", "pushd", "popd") and set(peeled.wrappers) <= {"builtin", "command"} and not appended:
            after, paths = _change_dir(local, core)
        else:
            remote = name in _REMOTE_SYNTAX
            paths = [ref for w in words if all(w is not n for n in peeled.skip) if (ref := _arg_path(w, remote))]
        self._emit(text, core, local, paths + refs, tuple(peeled.wrappers), appended)
        for start, end, more in commands.spawned([w.text for w in core]):
            self._simple(core[start:end], text, local, [], None, more)
        for source, what in peeled.scripts:
            if appended and source is not None and "{}" in source.text:  # find/xargs fill in `{}`
                source = _Word(source.text, dynamic=True)
            self._nested(source, local, what)
        return after

    def _nested(self, source: _Word | None, cwd: _Dir, what: str) -> None:
        """Analyse a shell string (``bash -c``, ``eval`` …) run by command ``what``."""
        if source is None:
            self.error(f"{what} reads commands from stdin")
        elif source.dynamic:
            self.error(f"{what}: command string is not static: {source.text}")
        elif source is not _FROM_FILE:
            self.source(source.text, cwd, what)


def analyze(command: str) -> ShellAnalysis:
    """Split ``command`` into the simple commands it would run.

    Args:
        command: A shell command line as an agent would pass to ``bash -c``.

    Returns:
        The segments, in execution order, and an error message when part of
        the command cannot be judged (syntax error, dynamic command word or
        shell string). Segments found so far are returned even on error.
    """
    if not command.strip():
        return ShellAnalysis(error="empty command")
    analyzer = _Analyzer()
    try:
        analyzer.source(command, _Dir())
    except RecursionError:
        analyzer.error("command is nested too deeply to analyse")
    return ShellAnalysis(tuple(analyzer.segments), "; ".join(analyzer.errors) or None)
