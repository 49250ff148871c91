"""The tables behind :mod:`jobgov.policy.commands`: what individual commands do.

Data only, plus the small rules the install/network tables are written with:

* :data:`WRAPPERS` — wrappers (``sudo``, ``env``, ``timeout`` …) and how their
  options and the wrapped command are laid out;
* :data:`RUNNERS`, :data:`XARGS_VALUE_OPTS`, :data:`FIND_EXEC` — commands that
  run further commands (``uv run``, ``xargs``, ``find -exec`` …);
* :data:`SHELLS` — shells whose commands may come from a string or stdin;
* :data:`INSTALL`, :data:`NETWORK`, :data:`NETWORK_ALWAYS`, :data:`VALUE_OPTS`
  — which subcommands install packages or reach the network.

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

import re
from collections.abc import Callable
from dataclasses import dataclass

from jobgov.policy.argv import skip_options

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


# --- commands that run further commands --------------------------------------

XARGS_VALUE_OPTS = frozenset(
    "-a --arg-file -d --delimiter -E --eof -I -L --max-lines -n --max-args -P --max-procs "
    "-s --max-chars --process-slot-var".split()
)
UV_VALUE_OPTS = frozenset(
    "--with --with-requirements --with-editable --python -p --package --directory --project "
    "--extra --group --env-file --index --index-url --default-index --cache-dir".split()
)
CONDA_VALUE_OPTS = frozenset("-n --name -p --prefix --cwd".split())
#: command -> (subcommand that runs a command, option words that take a value)
RUNNERS: dict[str, tuple[str, frozenset[str]]] = {
    "uv": ("run", UV_VALUE_OPTS),
    "pnpm": ("exec", frozenset({"-C", "--dir", "--filter", "-F"})),
    "yarn": ("exec", frozenset({"--cwd"})),
    "poetry": ("run", frozenset({"-C", "--directory", "-P", "--project"})),
    "pipenv": ("run", frozenset()),
    "pdm": ("run", frozenset({"-p", "--project"})),
    "hatch": ("run", frozenset()),
    "rye": ("run", frozenset()),
    "bundle": ("exec", frozenset()),
    "conda": ("run", CONDA_VALUE_OPTS),
    "mamba": ("run", CONDA_VALUE_OPTS),
    "micromamba": ("run", CONDA_VALUE_OPTS),
}
FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})

SHELLS = frozenset("sh bash zsh dash ksh mksh ash yash fish".split())


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
    end = skip_options(args, start, UV_VALUE_OPTS)
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
_PYTHON_INSTALL = _sub("install", "wheel")
_CONDA = _sub("install", "create", "update", "upgrade", "env create", "env update")

INSTALL: dict[str, Rule] = {
    "npm": _NPM_INSTALL,
    "pnpm": _sub(*"install i add update up upgrade dlx create install-test it".split()),
    "yarn": _either(lambda ops, args: not ops, _sub(*"install add upgrade up dlx create".split(), "global add")),
    "bun": _sub(*"install i add a update x create upgrade".split()),
    "npx": _has_operand, "bunx": _has_operand, "pnpx": _has_operand, "uvx": _has_operand,
    "deno": _sub("install", "i", "add"),
    "pip": _PYTHON_INSTALL, "pip-sync": lambda ops, args: True, "easy_install": _has_operand,
    # tox and nox build environments and install packages into them before running anything.
    "tox": lambda ops, args: True, "nox": lambda ops, args: True,
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

NETWORK_ALWAYS = frozenset(
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

NETWORK: dict[str, Rule] = {
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
VALUE_OPTS: dict[str, frozenset[str]] = {
    "git": frozenset("-C -c --git-dir --work-tree --namespace --config-env".split()),
    "docker": frozenset("-H --host -c --context --config -l --log-level".split()),
    "npm": frozenset({"--prefix", "-w", "--workspace"}),
    "pnpm": frozenset({"-C", "--dir", "-F", "--filter"}),
    "yarn": frozenset({"--cwd"}), "bun": frozenset({"--cwd"}),
    "uv": UV_VALUE_OPTS, "poetry": frozenset({"-C", "--directory", "-P", "--project"}),
    "go": frozenset({"-C"}), "apt": frozenset({"-o", "-c", "-t"}), "apt-get": frozenset({"-o", "-c", "-t"}),
    "conda": CONDA_VALUE_OPTS, "pip": frozenset({"--proxy", "--cache-dir"}),
    "cargo": frozenset({"--manifest-path", "-Z", "--config"}),
    "rsync": frozenset({"-e", "--rsh", "--exclude", "--include", "--filter", "-f"}),
}
