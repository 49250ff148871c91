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

Borderline decisions (documented once, here):

* Builds that may download dependencies (``cargo build``, ``mvn package``,
  ``gradle build``, ``npm run``, ``uv run`` without ``--with``) are neither
  installs nor network. ``mvn deploy``/``dependency:*`` and ``gradle publish*``
  are network, not installs.
* Lock/resolve/publish/registry queries (``cargo update``, ``uv lock``,
  ``poetry lock``, ``go mod download|tidy``, ``pip download``, ``npm view``,
  ``npm publish``, ``apt update``, ``dotnet restore``) are network.
* ``npx``/``bunx``/``pnpm dlx``/``yarn dlx``/``uvx``/``pipx run``/``nix run``/
  ``nix shell`` fetch a package, so they are installs; ``dpkg -i`` installs a
  local ``.deb`` and is an install too.
* Servers that only listen (``python -m http.server``, ``nc -l`` aside — every
  ``nc`` is network) are not network: like ``npm run dev`` they reach nothing.
* An install is never also reported as network (the policy judges installs
  on their own).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Argv = Sequence[str]
#: A position inside argv: (word index, character offset of the value).
Ref = tuple[int, int]

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_VERSIONED = re.compile(r"(python|pypy|pip)[0-9.]*")


def command_name(word: str) -> str:
    """Basename of a command word, with ``python3.11``/``pip3`` folded to ``python``/``pip``."""
    base = posixpath.basename(word)
    match = _VERSIONED.fullmatch(base)
    if match:
        return "python" if match.group(1) == "pypy" else match.group(1)
    return base


def _option(argv: Argv, i: int, value_opts: frozenset[str]) -> tuple[list[str], Ref | None, int]:
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
        i = _option(argv, i, value_opts)[2]
    return i


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


# --- wrappers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wrapper:
    """How a wrapper command's own options and operands are laid out."""

    value_opts: frozenset[str] = frozenset()
    #: Operands between the options and the wrapped command (timeout DURATION).
    operands: int = 0
    #: ``NAME=value`` words may precede the command (env).
    assignments: bool = False
    #: Options meaning no command is run (``command -v``, ``sudo -l``).
    no_command_opts: frozenset[str] = frozenset()
    #: Options whose value is a shell command string (``flock -c``, ``su -c``).
    script_opts: frozenset[str] = frozenset()
    #: Options whose value is the wrapped command's working directory.
    chdir_opts: frozenset[str] = frozenset()
    #: Without ``literal_opts``, the remaining words are joined into a shell string (watch).
    joins_script: bool = False
    literal_opts: frozenset[str] = frozenset()
    #: The command comes only from ``script_opts`` (su, nix-shell), never from operands.
    script_only: bool = False


def _w(
    value_opts: str = "",
    *,
    operands: int = 0,
    assignments: bool = False,
    no_command: str = "",
    script: str = "",
    chdir: str = "",
    joins_script: bool = False,
    literal: str = "",
    script_only: bool = False,
) -> Wrapper:
    """Build a :class:`Wrapper` from space-separated option lists."""
    return Wrapper(
        frozenset(f"{value_opts} {script} {chdir}".split()), operands, assignments, frozenset(no_command.split()),
        frozenset(script.split()), frozenset(chdir.split()), joins_script,
        frozenset(literal.split()), script_only,
    )


WRAPPERS: dict[str, Wrapper] = {
    "env": _w("-u --unset -C --chdir", assignments=True, chdir="-C --chdir",
              script="-S --split-string"),
    "timeout": _w("-s --signal -k --kill-after", operands=1),
    "nohup": _w(),
    "nice": _w("-n --adjustment"),
    "sudo": _w("-u --user -g --group -C --close-from -D --chdir -h --host -p --prompt -r --role "
               "-t --type -T --command-timeout -U --other-user", chdir="-D --chdir",
               no_command="-e --edit -l --list -v --validate -V --version -K"),
    "doas": _w("-u -C"),
    "command": _w(no_command="-v -V"),
    "exec": _w("-a"),
    "builtin": _w(),
    "stdbuf": _w("-i -o -e --input --output --error"),
    "time": _w("-f --format -o --output"),
    "strace": _w("-o -e -p -s -u -E -P -I -b -a -X -O -S -U", no_command="-p"),
    "ltrace": _w("-o -e -p -s -u -n -a", no_command="-p"),
    "watch": _w("-n --interval -q --equexit -s --shell", joins_script=True, literal="-x --exec"),
    "ionice": _w("-c --class -n --classdata -p --pid -P --pgid -u --uid", no_command="-p -P -u"),
    "chroot": _w("--userspec --groups", operands=1),
    "flock": _w("-w --timeout -E --conflict-exit-code", operands=1, script="-c --command"),
    "setsid": _w(),
    "coproc": _w(),
    "unbuffer": _w(),
    "fakeroot": _w(),
    "torsocks": _w(),
    "proxychains": _w("-f"),
    "proxychains4": _w("-f"),
    "taskset": _w(operands=1, no_command="-p --pid"),
    "chrt": _w(operands=1, no_command="-p --pid"),
    "pkexec": _w("--user"),
    "su": _w("-c --command --session-command -s --shell -g --group -G --supp-group -w",
             script="-c --command --session-command", script_only=True),
    "runuser": _w("-c --command --session-command -s --shell -g --group -G --supp-group -u --user",
                  script="-c --command --session-command", script_only=True),
    "script": _w("-c --command -E --echo -O --log-out -I --log-in -T --log-timing",
                 script="-c --command", script_only=True),
    "nix-shell": _w("--run --command -p --packages -I --arg --argstr",
                    script="--run --command", script_only=True),
}


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
        names, value, i = _option(argv, i, spec.value_opts)
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

_XARGS_VALUE_OPTS = frozenset(
    "-a --arg-file -d --delimiter -E --eof -I -L --max-lines -n --max-args -P --max-procs "
    "-s --max-chars --process-slot-var".split()
)
_UV_VALUE_OPTS = frozenset(
    "--with --with-requirements --with-editable --python -p --package --directory --project "
    "--extra --group --env-file --index --index-url --default-index --cache-dir".split()
)
_CONDA_VALUE_OPTS = frozenset("-n --name -p --prefix --cwd".split())
#: command -> (subcommand that runs a command, option words that take a value)
_RUNNERS: dict[str, tuple[str, frozenset[str]]] = {
    "uv": ("run", _UV_VALUE_OPTS),
    "poetry": ("run", frozenset({"-C", "--directory", "-P", "--project"})),
    "pipenv": ("run", frozenset()),
    "pdm": ("run", frozenset({"-p", "--project"})),
    "hatch": ("run", frozenset()),
    "rye": ("run", frozenset()),
    "bundle": ("exec", frozenset()),
    "conda": ("run", _CONDA_VALUE_OPTS),
    "mamba": ("run", _CONDA_VALUE_OPTS),
    "micromamba": ("run", _CONDA_VALUE_OPTS),
}
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def spawned(argv: Argv) -> list[tuple[int, int, bool]]:
    """Commands ``argv`` runs itself, as ``(start, end, args_appended)`` word ranges.

    ``args_appended`` is True when more arguments are only known at run time
    (``xargs``, ``find -exec``).
    """
    name = command_name(argv[0])
    if name == "xargs":
        i = skip_options(argv, 1, _XARGS_VALUE_OPTS)
        return [(i, len(argv), True)] if i < len(argv) else []
    if name == "find":
        out = []
        for i, word in enumerate(argv):
            if word in _FIND_EXEC:
                end = next((k for k in range(i + 1, len(argv)) if argv[k] in (";", "+")), len(argv))
                if end > i + 1:
                    out.append((i + 1, end, True))
        return out
    if name in _RUNNERS:
        sub, value_opts = _RUNNERS[name]
        i = skip_options(argv, 1, value_opts)
        if i < len(argv) and argv[i] == sub:
            j = skip_options(argv, i + 1, value_opts)
            return [(j, len(argv), False)] if j < len(argv) else []
    return []


SHELLS = frozenset("sh bash zsh dash ksh mksh ash yash fish".split())


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

Rule = Callable[[list[str], list[str]], bool]  # (operands, args) -> bool


def _sub(*subcommands: str) -> Rule:
    """Rule: the leading operands spell one of ``subcommands`` (``"tool install"``)."""
    seqs = [s.split() for s in subcommands]
    return lambda ops, args: any(ops[: len(s)] == s for s in seqs)


def _either(*rules: Rule) -> Rule:
    return lambda ops, args: any(rule(ops, args) for rule in rules)


def _has_operand(ops: list[str], args: list[str]) -> bool:
    return bool(ops)


def _arg(pattern: str) -> Rule:
    """Rule: some argument fully matches the regex ``pattern``."""
    regex = re.compile(pattern)
    return lambda ops, args: any(regex.fullmatch(a) for a in args)


def _pacman(ops: list[str], args: list[str]) -> bool:
    for a in args:
        if a in ("--sync", "--upgrade") or a.startswith("-U"):
            return True
        if re.fullmatch(r"-S[a-zA-Z]*", a) and not set(a[2:]) & set("silgpc"):
            return True
    return not args


def _uv_run_with(ops: list[str], args: list[str]) -> bool:
    if "run" not in args:
        return False
    start = args.index("run") + 1
    end = skip_options(args, start, _UV_VALUE_OPTS)
    return any(a.startswith("--with") for a in args[start:end])


_NPM_INSTALL = _either(
    _sub(*"install i in ins inst insta instal isnt isnta isntal isntall add ci clean-install ic "
         "install-clean isntall-clean install-test it install-ci-test cit update up upgrade udpate "
         "exec x".split(), "audit fix"),
    lambda ops, args: len(ops) > 1 and ops[0] in ("init", "create", "innit"),
)
_JS_NETWORK = _sub(*"publish unpublish login logout adduser whoami view v info show search s "
                   "outdated audit ping deprecate dist-tag owner access token star unstar team org "
                   "hook profile".split(), "npm publish", "npm login", "npm info", "npm audit")
_PYTHON_INSTALL = _sub("install")
_CONDA = _sub("install", "create", "update", "upgrade", "env create", "env update")

_INSTALL: dict[str, Rule] = {
    "npm": _NPM_INSTALL,
    "pnpm": _sub(*"install i add update up upgrade dlx create install-test it".split()),
    "yarn": _either(lambda ops, args: not ops, _sub(*"install add upgrade up dlx create".split(), "global add")),
    "bun": _sub(*"install i add a update x create upgrade".split()),
    "npx": _has_operand, "bunx": _has_operand, "pnpx": _has_operand, "uvx": _has_operand,
    "deno": _sub("install", "i", "add"),
    "pip": _PYTHON_INSTALL, "pip-sync": lambda ops, args: True, "easy_install": _has_operand,
    "ensurepip": lambda ops, args: True,
    "uv": _either(_sub("pip install", "pip sync", "add", "sync", "tool install", "tool run",
                       "tool upgrade", "python install"), _uv_run_with),
    "pipx": _sub(*"install inject run upgrade upgrade-all reinstall reinstall-all".split()),
    "poetry": _sub("add", "install", "update", "sync", "self add", "self install", "self update"),
    "pdm": _sub("add", "install", "sync", "update"),
    "pipenv": _sub("install", "sync", "update"),
    "conda": _CONDA, "mamba": _CONDA, "micromamba": _CONDA,
    "cargo": _sub("add", "install", "binstall"), "cargo-binstall": _has_operand,
    "go": _sub("get", "install"),
    "gem": _sub("install", "update"),
    "bundle": _sub("install", "add", "update"), "bundler": _sub("install", "add", "update"),
    "composer": _sub("require", "install", "update", "global require", "create-project"),
    "apt": _sub(*"install reinstall upgrade dist-upgrade full-upgrade build-dep".split()),
    "apt-get": _sub(*"install reinstall upgrade dist-upgrade build-dep".split()),
    "aptitude": _sub("install", "reinstall", "upgrade", "safe-upgrade", "full-upgrade"),
    "dpkg": _arg(r"-i|--install"),
    "dnf": _sub(*"install reinstall upgrade update groupinstall localinstall".split(), "group install",
                "module install"),
    "yum": _sub(*"install reinstall upgrade update groupinstall localinstall".split(), "group install"),
    "microdnf": _sub("install", "upgrade", "update"),
    "zypper": _sub(*"install in update up dist-upgrade dup source-install si".split()),
    "pacman": _pacman, "yay": _pacman, "paru": _pacman,
    "apk": _sub("add", "upgrade"),
    "brew": _sub("install", "reinstall", "upgrade", "bundle"),
    "port": _sub("install", "upgrade"),
    "snap": _sub("install", "refresh"),
    "flatpak": _sub("install", "update"),
    "nix-env": _arg(r"--install|--upgrade|-[iu][A-Za-z]*"),
    "nix": _sub("profile install", "profile add", "shell", "run"),
    "nix-shell": _arg(r"-p|--packages"),
    "dotnet": _either(lambda ops, args: ops[:1] == ["add"] and "package" in ops,
                      _sub("tool install", "tool update", "workload install")),
    "luarocks": _sub("install"), "opam": _sub("install"),
    "cpan": _either(_has_operand, _arg(r"-i")), "cpanm": _has_operand,
    "R": _arg(r".*(install\.packages|install_github|BiocManager::install).*"),
    "Rscript": _arg(r".*(install\.packages|install_github|BiocManager::install).*"),
    "rustup": _sub("install", "update", "toolchain install", "target add", "component add"),
    "pyenv": _sub("install"), "rbenv": _sub("install"), "nodenv": _sub("install"),
    "nvm": _sub("install"), "fnm": _sub("install"), "volta": _sub("install"),
    "asdf": _sub("install", "plugin add"), "mise": _sub("install", "use", "plugin install"),
    "sdk": _sub("install"), "vcpkg": _sub("install"), "conan": _sub("install"),
}

_NETWORK_ALWAYS = frozenset(
    "curl wget wget2 aria2c axel ssh scp sftp ftp lftp tftp telnet nc ncat netcat socat ping ping6 "
    "fping traceroute tracepath mtr dig nslookup host whois drill http https httpie xh curlie gh glab "
    "hub aws gcloud gsutil bq az kubectl oc helm eksctl doctl flyctl fly heroku vercel netlify "
    "wrangler firebase rclone s3cmd ngrok cloudflared nmap masscan ssh-keyscan ssh-copy-id mosh rsh "
    "rlogin yt-dlp youtube-dl websocat wscat grpcurl pulumi ldapsearch smbclient".split()
)
_REMOTE_OPERAND = re.compile(r"rsync://.*|([\w.+-]+@)?[\w.-]+::?.*")
_DOCKER = _sub("pull", "push", "login", "logout", "search", "image pull", "image push",
               "compose pull", "compose push", "manifest push")
_GIT = _either(
    _sub(*"push pull fetch clone ls-remote svn send-email".split(), "remote update", "remote show",
         "remote prune", "submodule update", "submodule add", "lfs fetch", "lfs pull", "lfs push",
         "lfs clone"),
    _arg(r"--remote(=.*)?"),
)

_NETWORK: dict[str, Rule] = {
    "git": _GIT,
    "docker": _DOCKER, "podman": _DOCKER, "nerdctl": _DOCKER,
    "npm": _JS_NETWORK, "pnpm": _JS_NETWORK, "yarn": _JS_NETWORK, "bun": _sub("publish", "pm view"),
    "pip": _sub("download", "index", "search"),
    "uv": _sub("publish", "lock", "pip compile"),
    "poetry": _sub("publish", "lock", "search"),
    "pdm": _sub("publish", "lock"),
    "twine": _sub("upload", "register"), "flit": _sub("publish"), "hatch": _sub("publish"),
    "cargo": _sub(*"publish yank login search fetch owner update vendor".split()),
    "go": _sub("mod download", "mod tidy"),
    "gem": _sub("push", "fetch", "search", "yank", "owner"),
    "dotnet": _sub("restore", "nuget push", "nuget delete", "package search"),
    "mvn": _arg(r"deploy|(dependency|release):.*"), "mvnw": _arg(r"deploy|(dependency|release):.*"),
    "gradle": _arg(r"publish.*"), "gradlew": _arg(r"publish.*"),
    "apt": _sub("update", "download", "source", "changelog"),
    "apt-get": _sub("update", "download", "source", "changelog"),
    "dnf": _sub("makecache", "download", "check-update"),
    "yum": _sub("makecache", "check-update"),
    "brew": _sub("update", "tap", "fetch", "search"),
    "conda": _sub("search"),
    "openssl": _sub("s_client"),
    "terraform": _sub(*"init plan apply destroy import refresh get login logout".split()),
    "tofu": _sub(*"init plan apply destroy import refresh get login logout".split()),
    "rsync": lambda ops, args: any(_REMOTE_OPERAND.fullmatch(o) for o in ops),
}

#: Option words that take a value and may come before a subcommand.
_VALUE_OPTS: dict[str, frozenset[str]] = {
    "git": frozenset("-C -c --git-dir --work-tree --namespace --config-env".split()),
    "docker": frozenset("-H --host -c --context --config -l --log-level".split()),
    "npm": frozenset({"--prefix", "-w", "--workspace"}),
    "pnpm": frozenset({"-C", "--dir", "-F", "--filter"}),
    "yarn": frozenset({"--cwd"}), "bun": frozenset({"--cwd"}),
    "uv": _UV_VALUE_OPTS, "poetry": frozenset({"-C", "--directory", "-P", "--project"}),
    "go": frozenset({"-C"}), "apt": frozenset({"-o", "-c", "-t"}), "apt-get": frozenset({"-o", "-c", "-t"}),
    "conda": _CONDA_VALUE_OPTS, "pip": frozenset({"--proxy", "--cache-dir"}),
    "cargo": frozenset({"--manifest-path", "-Z", "--config"}),
    "rsync": frozenset({"-e", "--rsh", "--exclude", "--include", "--filter", "-f"}),
}


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
    ops = operands(args, _VALUE_OPTS.get(name, frozenset()))
    if name in ("cargo", "rustup"):
        ops = [o for o in ops if not o.startswith("+")]
    install_rule = _INSTALL.get(name)
    if install_rule is not None and install_rule(ops, args):
        return True, False
    network_rule = _NETWORK.get(name)
    return False, name in _NETWORK_ALWAYS or (network_rule is not None and network_rule(ops, args))
