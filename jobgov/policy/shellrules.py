"""What in a command line changes how the rest of it is read: variables, evaluation, hidden text.

Setting a variable that decides which program runs (``PATH``, ``LD_PRELOAD``, ``GIT_PAGER``) or
one jobgov does not know to be harmless, arithmetic on a variable (bash runs ``a[$(cmd)]``
subscripts in its value), ``${x@P}``, function definitions and invisible characters all make a
command line unjudgeable. Pure functions over the tree-sitter tree.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from jobgov.policy.shellwords import node_text

#: Variables that decide which program or code a command runs: setting them (``PATH=./bin tool``,
#: ``export LD_PRELOAD=...``, ``env BASH_ENV=x bash``) makes the command line impossible to judge.
_LOADER_VARIABLES = frozenset({
    "PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "DYLD_LIBRARY_PATH",
    "BASH_ENV", "ENV", "PROMPT_COMMAND", "IFS", "PYTHONPATH", "PYTHONSTARTUP", "NODE_OPTIONS", "PERL5OPT",
    "PERL5LIB", "RUBYOPT", "RUBYLIB", "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "SHELLOPTS", "BASHOPTS",
    # Variables naming a program that commands run for you (a pager, an editor, a diff or askpass helper).
    "PAGER", "GIT_PAGER", "MANPAGER", "SYSTEMD_PAGER", "EDITOR", "VISUAL", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR",
    "GIT_EXTERNAL_DIFF", "GIT_ASKPASS", "SSH_ASKPASS", "SUDO_ASKPASS", "GIT_SSH", "GIT_PROXY_COMMAND",
    "LESSOPEN", "LESSCLOSE", "BROWSER", "CDPATH", "PYTHONHOME", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS",
    "NODE_PATH", "GIT_TEMPLATE_DIR", "GIT_DIR", "GIT_WORK_TREE",
})  # fmt: skip


#: Prefixes of such variables: every ``GIT_CONFIG_*`` sets git configuration; ``LD_``/``DYLD_`` are loaders.
_LOADER_PREFIXES = ("GIT_CONFIG", "LD_", "DYLD_", "npm_config_", "NPM_CONFIG_")


_ASSIGNED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\[[^]]*\])?\+?=")


#: Upper-case variables that change nothing about what runs or where it writes: setting them
#: (``CI=1 npm test``, ``RUST_BACKTRACE=1 cargo test``) is judged like not setting them. Any other
#: upper-case name may be one a tool reads to run a program or write a file (``CC``, ``GIT_TRACE``,
#: ``LUA_INIT``, ``RUSTC_WRAPPER`` ...): closed world, it asks. Lower-case names are shell variables.
SAFE_VARIABLES = frozenset({
    "CI", "DEBUG", "VERBOSE", "V", "QUIET", "NODE_ENV", "RAILS_ENV", "RACK_ENV", "APP_ENV", "FLASK_ENV",
    "FLASK_DEBUG", "ENV", "ENVIRONMENT", "STAGE", "LOG_LEVEL", "LOGLEVEL", "RUST_LOG", "RUST_BACKTRACE",
    "RUST_TEST_THREADS", "GOMAXPROCS", "GOOS", "GOARCH", "CGO_ENABLED", "GO111MODULE", "TZ", "LANG",
    "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "LC_COLLATE", "TERM", "COLORTERM", "NO_COLOR",
    "FORCE_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "COLUMNS", "LINES", "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PYTHONWARNINGS", "PYTHONIOENCODING", "PYTHONUTF8",
    "PYTHONFAULTHANDLER", "PYTHONDEVMODE", "PYTEST_ADDOPTS", "PYTEST_TIMEOUT", "CARGO_TERM_COLOR",
    "CARGO_INCREMENTAL", "NEXT_TELEMETRY_DISABLED", "DO_NOT_TRACK", "HUSKY", "SKIP", "PORT", "TEST",
    "TESTING", "COVERAGE", "NODE_NO_WARNINGS", "UPDATE_SNAPSHOTS", "INSTA_UPDATE", "JOBS", "NUM_JOBS",
    "GIT_TERMINAL_PROMPT", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE", "TIMEOUT", "SECONDS",
})  # fmt: skip


def assignments(root: Node) -> list[tuple[str, bool]]:
    """Variables set anywhere in the tree that may change what runs: ``(name, known to)``.

    Prefix assignments, bare ones, ``export``/``declare`` arguments and ``env NAME=x`` words.
    ``known to``: a loader or command variable (``PATH``, ``GIT_PAGER`` ...); else an upper-case
    name jobgov does not know. A bare word of that shape (``echo PATH=x``) counts too (fail closed).
    """
    found: dict[str, bool] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in ("variable_assignment", "word"):
            match = _ASSIGNED.match(node_text(node))
            name = match.group(1) if match is not None else ""
            if name in _LOADER_VARIABLES or name.startswith(_LOADER_PREFIXES):
                found.setdefault(name, True)
            elif name and name.upper() == name and name not in SAFE_VARIABLES and name not in found:
                found[name] = False
        stack.extend(node.children)
    return list(found.items())


_ARITH_TEST = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge", "-v", "-R"})


_VARIABLE_NODES = frozenset({"variable_name", "simple_expansion", "expansion", "command_substitution"})


def evaluated(root: Node) -> list[str]:
    """Shell constructs that evaluate text as code or define names: never auto-approved.

    Arithmetic on a variable (``$((x))``, ``((x))``, ``[[ $x -eq 1 ]]``, ``declare -i``) runs any
    ``a[$(cmd)]`` subscript the value holds; ``${x@P}`` runs substitutions in it; a function
    definition can shadow any command the model knows (``ls() { ...; }; ls``).
    """
    problems: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        kind = node.type
        if kind == "function_definition":
            name = node.child_by_field_name("name")
            problems.append(f"defines a shell function{f' {node_text(name)}' if name is not None else ''}")
        elif kind == "arithmetic_expansion" or (kind == "compound_statement" and node_text(node).startswith("((")):
            if _mentions_variable(node):
                problems.append("evaluates arithmetic on a variable, which can run commands hidden in its value")
        elif kind in ("binary_expression", "unary_expression") and node.parent is not None and \
                node.parent.type == "test_command":
            ops = {node_text(c) for c in node.children if not c.is_named or c.type == "test_operator"}
            if ops & _ARITH_TEST and _mentions_variable(node):
                problems.append("compares a variable arithmetically, which can run commands hidden in its value")
        elif kind == "expansion" and re.search(r"@[PEAK]\}$", node_text(node)):
            problems.append(f"expands {node_text(node)}, which runs what the value holds")
        elif kind == "declaration_command" and any(
                re.fullmatch(r"-[a-zA-Z]*[in][a-zA-Z]*", node_text(c)) for c in node.children if c.type == "word"):
            problems.append("declares an integer or name-reference variable, which evaluates its value")
        stack.extend(node.children)
    return list(dict.fromkeys(problems))


def _mentions_variable(node: Node) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in _VARIABLE_NODES:
            return True
        stack.extend(current.children)
    return False


#: Characters that display as nothing (or move the cursor) and so can hide part of a command:
#: C0 controls but tab and newline, DEL, C1 controls, zero-width and bidirectional controls.
HIDDEN = re.compile("[\x01-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
                    "\U000e0000-\U000e0fff]")

