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
3. Words are rebuilt from the tree (:func:`~jobgov.policy.shellwords.read_word`:
   quotes removed, escapes applied, expansions kept as written) together with
   whether their value is only known at run time.
4. Each simple command is peeled of wrappers (``sudo``, ``env``, ``timeout`` …,
   see :mod:`jobgov.policy.commands` and :func:`~jobgov.policy.shellwords.peel`);
   commands it spawns (``xargs``, ``find -exec``, ``uv run``) and shell strings
   it runs (``bash -c``, ``eval``, ``watch``, ``flock -c``, a heredoc fed to
   ``sh``) are analysed recursively into further segments.
5. ``cd``/``pushd``/``popd`` thread a :class:`~jobgov.policy.shellwords.Dir`
   through sequential lists; subshells, pipelines, substitutions and background
   jobs keep their own.

A redirect with no command to carry it (``> f``, ``{ …; } > f``) is reported
as a segment with an empty ``argv``. Bare assignments (``X=1``) and the
arguments of ``export``/``declare``/``unset`` carry no paths.

INTERFACE: ``analyze(command: str) -> ShellAnalysis``
"""

from __future__ import annotations

import re

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from jobgov.policy import commands
from jobgov.policy.model import Stdin, judge
from jobgov.policy.model_tables import MODEL
from jobgov.policy.pipes import fill_appended
from jobgov.policy.segments import Segment, ShellAnalysis
from jobgov.policy.shellrules import HIDDEN, assignments, evaluated
from jobgov.policy.shellwords import (
    HARMLESS,
    SOURCE,
    Dir,
    Word,
    arg_path,
    ascii_shadow,
    change_dir,
    expand_braces,
    flatten,
    node_text,
    peel,
    read_word,
)

# Re-exported: callers import the path and result types from here.
from jobgov.policy.shellwords import PathKind as PathKind
from jobgov.policy.shellwords import PathRef as PathRef

__all__ = ["MAX_COMMAND_CHARS", "MAX_SEGMENTS", "PathKind", "PathRef", "Segment", "ShellAnalysis", "analyze"]


_PARSER = Parser(Language(tree_sitter_bash.language()))

_MAX_DEPTH = 8
#: Past these sizes a command line is "too complex to judge" (ask-user), so that every decision
#: takes bounded time whatever the input.
MAX_COMMAND_CHARS = 100_000
MAX_SEGMENTS = 256
#: The only wrappers whose command is judged as if it ran alone; any other wrapper is unknown.
WRAPPERS_MODELLED = frozenset({"env", "timeout", "nice", "nohup", "time", "stdbuf", "command", "builtin",
                               "exec", "sudo", "doas", "ionice", "unbuffer"})
_REDIRECTS = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_OWN_SCOPE = frozenset({"subshell", "command_substitution", "process_substitution", "function_definition"})
_BUILTINS = frozenset({"test_command", "declaration_command", "unset_command"})
_REMOTE_SYNTAX = frozenset({"scp", "rsync", "sftp", "git", "ssh", "rclone"})


#: Marks stdin redirected from a file (``sh < script.sh``): a script we cannot read.
_FROM_FILE = Word("<file>")


# --- the walk ---------------------------------------------------------------------------


def _parse(text: str) -> tuple[bytes, Node]:
    """``text``'s bytes and tree-sitter-bash's tree of them, parsed through their ASCII shadow."""
    raw, shadow = ascii_shadow(text)
    return raw, _PARSER.parse(shadow).root_node


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
        if end < 0 or not _parse(text[start:end])[1].has_error:
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
        #: The segment whose output feeds the stage being walked (``None``: not in a pipe).
        self._producer: Segment | None = None
        self._piped = False

    def error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)

    def source(self, text: str, cwd: Dir, what: str | None = None) -> None:
        """Parse and walk ``text``; ``what`` names the nested string (``None``: the command line)."""
        prefix = f"{what}: " if what else ""
        if self._depth > _MAX_DEPTH:
            self.error(f"{prefix}commands nested too deeply")
            return
        src, root = _parse(text)
        saved, self._src = self._src, src
        token = SOURCE.set(src)  # every node text below is read from these bytes
        self._depth += 1
        try:
            bad = _first_error(root)
            if bad is not None:
                row, col = bad.start_point
                self.error(f"{prefix}syntax error at line {row + 1}, column {col + 1}")
            for name, known in assignments(root):
                if known:
                    self.error(f"{prefix}sets {name}, which changes what the commands run")
                else:
                    self.error(f"{prefix}sets {name}, a variable jobgov does not know (it may change what runs)")
            for problem in evaluated(root):
                self.error(f"{prefix}{problem}")
            self.walk(root, cwd)
        finally:
            SOURCE.reset(token)
            self._src = saved
            self._depth -= 1

    def walk(self, node: Node, cwd: Dir) -> Dir:
        """Walk ``node`` starting in ``cwd``; return the directory it leaves behind."""
        if len(self.segments) >= MAX_SEGMENTS:
            self.error(f"too complex to judge: more than {MAX_SEGMENTS} commands")
            return cwd  # past the cap nothing more is read: the answer is already ask-user
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

    def _sequence(self, node: Node, cwd: Dir) -> Dir:
        """Walk children in order, threading the directory (not past a ``&`` job)."""
        children = node.children
        for i, child in enumerate(children):
            after = self.walk(child, cwd)
            if not (i + 1 < len(children) and children[i + 1].type == "&"):
                cwd = after
        return cwd

    def _list(self, node: Node, cwd: Dir) -> Dir:
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

    def _redirected(self, node: Node, cwd: Dir) -> Dir:
        """A statement with redirects; they belong to its rightmost simple command, if any."""
        body = node.child_by_field_name("body")
        redirects = node.children_by_field_name("redirect")
        for redirect in redirects:
            self.walk(redirect, cwd)
        if body is None:  # `> file` alone
            self._emit(node_text(node), [], cwd, self._redirects(redirects)[0])
            return cwd
        return self._carry(body, cwd, redirects, node)

    def _carry(self, node: Node, cwd: Dir, redirects: list[Node], stmt: Node) -> Dir:
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
            self._emit(node_text(stmt), [], cwd, refs)
        return self.walk(node, cwd)

    def _pipeline(self, node: Node, cwd: Dir, redirects: list[Node], stmt: Node) -> Dir:
        """Stages run side by side, each in a subshell, so none changes the directory.

        Except that tree-sitter reads ``a && b < f | c`` as ``(a && b < f) | c``
        where bash runs ``a && (b < f | c)``: such a leading list runs first.
        """
        *stages, last = node.named_children
        after = cwd
        saved = self._producer, self._piped
        try:
            for i, stage in enumerate(stages):
                mark = len(self.segments)
                body = stage.child_by_field_name("body") if stage.type == "redirected_statement" else None
                if i == 0 and body is not None and body.type == "list":
                    after = cwd = self.walk(stage, cwd)
                else:
                    self.walk(stage, cwd)
                # The next stage reads what this one's last command writes.
                self._producer = self.segments[-1] if len(self.segments) > mark else None
                self._piped = True
            self._carry(last, cwd, redirects, stmt)
        finally:
            self._producer, self._piped = saved
        return after

    def _command(self, node: Node, cwd: Dir, outer: list[Node], end: int) -> Dir:
        """A simple command; ``outer`` are redirects tree-sitter hung on an enclosing statement."""
        for child in node.children:
            self.walk(child, cwd)
        words: list[Word] = []
        redirects = list(outer)
        children = node.children
        for k, child in enumerate(children):
            if child.type == "number" and k + 1 < len(children) and children[k + 1].type in _REDIRECTS \
                    and child.end_byte == children[k + 1].start_byte:
                continue  # `bash 0<<<'...'`: the number is the redirect's descriptor, not an argument
            if child.type in _REDIRECTS:
                redirects.append(child)
            elif child.type == "command_name":
                words += [read_word(c) for c in child.children[:1] if not c.is_missing]
            elif child.is_named and child.type != "variable_assignment":
                words += expand_braces(child) or [read_word(child)]
        refs, extra, stdin = self._redirects(redirects)
        text = self._src[node.start_byte : end].decode(errors="replace")
        return self._simple(words + extra, text, cwd, refs, stdin)

    def _redirects(self, nodes: list[Node]) -> tuple[list[PathRef], list[Word], Word | None]:
        """Paths of redirects, stray words after a target (``> f arg``) and what stdin holds."""
        refs: list[PathRef] = []
        extra: list[Word] = []
        stdin: Word | None = None
        for node in nodes:
            if node.type == "heredoc_redirect":
                stdin = Word(self._heredoc_body(node))
                more, words, _ = self._redirects([c for c in node.children if c.type in _REDIRECTS])
                refs += more
                extra += words
            elif node.type == "herestring_redirect":
                stdin = read_word(node.named_children[0]) if node.named_children else Word("")
            else:
                dests = node.children_by_field_name("destination")
                extra += [read_word(d) for d in dests[1:]]
                ref = self._file_redirect(node, dests[0]) if dests else None
                if ref is not None:
                    refs.append(ref)
                    fd = node.child_by_field_name("descriptor")
                    if ref.kind == "redirect-read" and (fd is None or node_text(fd) == "0"):
                        stdin = _FROM_FILE
        return refs, extra, stdin

    @staticmethod
    def _file_redirect(node: Node, dest: Node) -> PathRef | None:
        """The file a ``>``/``<``-style redirect opens (not fd duplication or devices)."""
        op = next((node_text(c) for c in node.children if not c.is_named), "")
        if dest.type == "process_substitution" or op in ("<&", "<&-", ">&-"):
            return None
        if op == ">&" and dest.type == "number":
            return None
        word = read_word(dest)
        if not word.dynamic and HARMLESS.fullmatch(word.text):
            return None
        return PathRef(word.text, "redirect-read" if op == "<" else "redirect-write", word.dynamic)

    def _heredoc_body(self, node: Node) -> str:
        body = next((c for c in node.children if c.type == "heredoc_body"), None)
        text = node_text(body) if body is not None else ""
        if any(node_text(c) == "<<-" for c in node.children):
            text = re.sub(r"(?m)^\t+", "", text)
        return text

    def _heredoc(self, node: Node, cwd: Dir) -> None:
        """Command substitutions in an unquoted heredoc body run when the redirect is set up.

        tree-sitter-bash parses them only sometimes (never backticks, not after
        leading blanks), so the body is scanned here and each substitution parsed.
        """
        for child in node.children:
            if child.type != "heredoc_body":
                self.walk(child, cwd)
        start = next((c for c in node.children if c.type == "heredoc_start"), None)
        if start is not None and any(q in node_text(start) for q in "'\"\\"):
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

    def _builtin(self, node: Node, cwd: Dir) -> None:
        """``[[ … ]]``, ``[ … ]``, ``export``/``declare``/``local``/``unset`` as segments."""
        words = flatten(node)
        paths = [ref for w in words[1:] if (ref := arg_path(w, False))] if node.type == "test_command" else []
        self._emit(node_text(node), words, cwd, paths)

    def _emit(self, text: str, core: list[Word], cwd: Dir, paths: list[PathRef],
              wrappers: tuple[str, ...] = (), appended: bool = False, stdin: Stdin = "none",
              producer: Segment | None = None) -> None:
        if len(self.segments) >= MAX_SEGMENTS:
            self.error(f"too complex to judge: more than {MAX_SEGMENTS} commands")
            return
        argv = tuple(w.text for w in core)
        install, network = commands.classify(argv)
        judgement = None
        if core:
            words = fill_appended(core, producer) if appended else list(core)
            judgement = judge(words, stdin, MODEL)
            # The install and network tables also read the command without its options
            # (``pip --timeout 60 install x``, ``git -C . push``).
            plain_install, plain_network = commands.classify(judgement.plain)
            install = install or plain_install
            network = (network or plain_network) and not install
        odd = tuple(w for w in wrappers if w not in WRAPPERS_MODELLED)
        self.segments.append(Segment(
            text, argv, cwd.path, tuple(paths), install, network, cwd.dynamic, wrappers,
            appended or any(w.dynamic for w in core[1:]), judgement, odd, self._producer if self._piped else None,
        ))

    def _simple(self, words: list[Word], text: str, cwd: Dir, refs: list[PathRef],
                stdin: Word | None, appended: bool = False, producer: Segment | None = None) -> Dir:
        """Emit the segment(s) of one simple command; return the directory after it."""
        if not words:
            if refs:
                self._emit(text, [], cwd, refs)
            return cwd
        peeled = peel(words, cwd, stdin)
        core, local = peeled.core, peeled.cwd
        name = commands.command_name(core[0].text)
        if core[0].dynamic or core[0].glob:
            self.error(f"cannot tell which command runs: {core[0].text}")
        after = cwd
        if name in ("cd", "pushd", "popd") and set(peeled.wrappers) <= {"builtin", "command"} and not appended:
            after, paths = change_dir(local, core)
        else:
            remote = name in _REMOTE_SYNTAX
            paths = [ref for w in words if all(w is not n for n in peeled.skip) if (ref := arg_path(w, remote))]
        fed: Stdin = ("file" if stdin is _FROM_FILE else "heredoc" if stdin is not None
                      else "pipe" if self._piped else "none")
        self._emit(text, core, local, paths + refs, tuple(peeled.wrappers), appended, fed, producer)
        this = self.segments[-1] if self.segments else None
        for start, end, more in commands.spawned([w.text for w in core]):
            # xargs runs its payload on what the pipe brings; find -exec on what find finds.
            feeder = self._producer if name == "xargs" else this
            self._simple(core[start:end], text, local, [], None, more, feeder)
        for source, what in peeled.scripts:
            if appended and source is not None and "{}" in source.text:  # find/xargs fill in `{}`
                source = Word(source.text, dynamic=True)
            self._nested(source, local, what)
        return after

    def _nested(self, source: Word | None, cwd: Dir, what: str) -> None:
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
    if len(command) > MAX_COMMAND_CHARS:
        return ShellAnalysis(error=f"too complex to judge: longer than {MAX_COMMAND_CHARS:,} characters")
    if "\x00" in command:
        return ShellAnalysis(error="the command holds a NUL byte, which bash cannot pass on")
    hidden = HIDDEN.search(command)
    if hidden is not None:
        return ShellAnalysis(error=f"the command holds an invisible or control character (U+{ord(hidden.group()):04X}) "
                                   "that can hide what runs")
    try:
        command.encode()
    except UnicodeEncodeError:
        return ShellAnalysis(error="the command holds characters that are not valid Unicode")
    analyzer = _Analyzer()
    try:
        analyzer.source(command, Dir())
    except RecursionError:
        analyzer.error("command is nested too deeply to analyse")
    except Exception as exc:  # noqa: BLE001 - a bug here must fail closed (ask-user), never crash a worker
        analyzer.error(f"could not analyse the command ({type(exc).__name__})")
    return ShellAnalysis(tuple(analyzer.segments), "; ".join(analyzer.errors) or None)
