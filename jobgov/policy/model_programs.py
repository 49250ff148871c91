"""Programs in the command model: interpreters, package managers, builds, tests and linters.

A file an interpreter runs, a test runner, a build and a package script are the project's
own code (``shell_command.project_code`` decides them); inline programs and programs fed on
standard input are code jobgov cannot judge; ``npx TOOL`` and ``python -m MODULE`` run the
project's own tool only if the worktree has it (checked by ``normalize``).
"""

from __future__ import annotations

import posixpath
import re

from jobgov.policy.model import (
    Context,
    Role,
    Spec,
    data,
    first_is,
    interpreter,
    read_with,
    spec,
    unknown_use,
)
from jobgov.policy.shellwords import Word


def _python_m(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``python -m MODULE``: a test runner or tool the model knows, or an unknown program."""
    for module in seen.get("-m", []):
        name = module.text.split(".")[0] if module.text != "json.tool" else module.text
        if module.dynamic:
            ctx.unknown(f"runs a module known only at run time: {module.text}")
        elif module.text not in PYTHON_MODULES and name not in PYTHON_MODULES:
            ctx.local.append(("python-module", name))  # the project's own package, if the worktree has it
        elif module.text in ("venv", "virtualenv"):
            for word in ops:
                if not word.text.startswith("-"):
                    ctx.path(word, "write")


#: Modules ``python -m`` may run: the project's tests and tools (project code) and pip (an install).
PYTHON_MODULES = frozenset({
    "pytest", "unittest", "doctest", "pip", "venv", "virtualenv", "mypy", "ruff", "black", "isort", "flake8",
    "pylint", "pyright", "coverage", "tox", "nox", "build", "json.tool", "compileall", "py_compile", "cProfile",
    "profile", "django", "uvicorn", "gunicorn", "flask", "hatch", "poetry", "pre_commit",
    "setuptools", "wheel", "maturin", "sphinx", "mkdocs", "alembic", "celery", "pytest_benchmark", "hypothesis",
    "behave", "nose2", "ward", "pydoc_markdown", "bandit", "pydocstyle", "pycodestyle", "pyflakes", "autopep8",
    "yapf", "vulture", "radon", "pipdeptree", "pip_audit", "twine", "grpc_tools", "jupyter", "nbconvert", "ipykernel",
})  # fmt: skip


def _make(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``make [VAR=value...] [TARGET...]``: targets are the project's own; ``install`` writes outside it."""
    for word in ops:
        name, eq, value = word.text.partition("=")
        if eq and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            if name.upper() == name and name not in SAFE_MAKE_VARIABLES:
                ctx.unknown(f"sets make variable {name}, which can change what runs or where it installs")
            elif _looks_like_path(value):
                ctx.path(Word(value, word.dynamic, word.glob), "write")
        elif word.text in ("install", "uninstall"):
            ctx.unknown(f"make {word.text} writes outside the worktree (its install prefix)")


#: make variables that change no program and no destination.
SAFE_MAKE_VARIABLES = frozenset({"V", "VERBOSE", "DEBUG", "CI", "TESTS", "TEST", "ARGS", "TESTARGS",
                                 "TESTFLAGS", "RUN", "PKG", "JOBS"})


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "~", "..", "$")) or "/" in text


def _npx(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``npx TOOL``: the project's own tool when its ``node_modules/.bin`` has it; else npx downloads it."""
    if ops and not ops[0].dynamic and "-p" not in seen and "--package" not in seen:
        name = ops[0].text
        if re.fullmatch(r"[A-Za-z0-9._-]+", name):  # not `pkg@version` nor a scope: those are fetched
            ctx.local.append(("npm-bin", name))


def _go_packages(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``go run|build|test PKG...``: a package path ``./x`` is a directory read; ``mod@version`` is fetched."""
    for word in ops:
        if "@" in word.text and not word.text.startswith(("./", "../", "/")):
            ctx.unknown(f"go fetches and runs {word.text}")
        elif word.text.startswith((".", "/", "~")):
            ctx.path(Word(word.text.removesuffix("/...") or ".", word.dynamic, word.glob), "read")


def _shell(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``bash script.sh``: the project's own code. Its ``-c`` string, a heredoc or a here-string is
    judged by the shell analyser as commands of their own (and a program from a pipe is refused there)."""
    if ops and "-c" not in seen:
        ctx.path(ops[0], "program")


#: Package-manager subcommands that run the project's scripts; the rest are judged as installs,
#: network or plain reads by the install/network tables.
_JS_RUN = spec("data", does="project", values="--script-shell:code", effects={"--script-shell": "code"})


_JS_OTHER = spec("data")


_JS_SUBS = {
    **dict.fromkeys("run run-script test t tst start stop restart exec x rebuild build dev lint format serve "
                    "preview prepare watch typecheck check".split(), _JS_RUN),
    **dict.fromkeys("install i in add ci update up upgrade remove rm uninstall un link ln unlink init create "
                    "dlx audit outdated ls list la ll view info show why explain pack publish login logout whoami "
                    "config get set version --version -v help cache prune dedupe fund doctor root bin prefix "
                    "search s owner dist-tag deprecate install-test it import licenses store env".split(), _JS_OTHER),
}


def _npm_config(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``npm config set|delete|edit`` writes the user's ``~/.npmrc`` unless told ``--location project``."""
    if ops and ops[0].text in ("set", "delete", "rm", "edit", "fix") and not any(
            w.text == "project" for opt in ("--location", "-L") for w in seen.get(opt, [])):
        ctx.path(Word("~/.npmrc"), "write")


_JS_SUBS["config"] = _JS_SUBS["c"] = spec(_npm_config, values="--location -L")
_NPM_VALUES: dict[str, Role] = {"--prefix": "cwd", "-C": "cwd", "--dir": "cwd", "--registry": "data",
                                "--cwd": "cwd", "-w": "data", "--workspace": "data", "--filter": "data",
                                "--script-shell": "code", "--userconfig": "read", "--globalconfig": "read"}


_BUN_VALUES: dict[str, Role] = {**_NPM_VALUES, "-e": "code", "--eval": "code", "-p": "code", "--print": "code"}


#: npm runs only its own commands (``npm build:js`` is an error); yarn, pnpm and bun run a
#: script of that name.
_NPM = Spec(operands="data", values=_NPM_VALUES, subcommands=_JS_SUBS)


_YARN = Spec(operands="data", values=_NPM_VALUES, subcommands=_JS_SUBS, fallback=_JS_RUN)


_CARGO_SUBS = {
    **dict.fromkeys("build b check c test t run r bench clippy doc d fix rustc rustdoc".split(),
                    spec("data", values="-p --package --bin --example --test --bench --features -F --target "
                                        "-j --jobs --profile --manifest-path:read --target-dir:write "
                                        "--message-format --color -Z", does="project")),
    **dict.fromkeys("fmt tree metadata locate-project pkgid version verify-project search update fetch "
                    "generate-lockfile install uninstall add remove new init package publish login owner "
                    "yank vendor help".split(),
                    spec("data", values="-p --package --manifest-path:read --vers --version --git --path:read "
                                        "--root:write --features")),
}


_GO_BUILD = data("-o:write -run -bench -count -timeout -tags -p -C:cwd -ldflags -gcflags -asmflags -coverprofile:write "
               "-cpuprofile:write -memprofile:write -exec:code -toolexec:code -mod -modfile:read -covermode "
               "-coverpkg -benchtime -parallel -cpu -shuffle -outputdir:write -overlay:read -pgo:read")


#: go's flags are single-dash words (``-toolexec=x``), never bundles of letters.
_GO_SUBS = {
    **dict.fromkeys("test run generate build install vet".split(),
                    spec(_go_packages, values=_GO_BUILD, long_single_dash=True, does="project",
                         effects={"-exec": "code", "-toolexec": "code"})),
    **dict.fromkeys("fmt doc list env version mod work clean fix help tool".split(),
                    spec("data", values=data("-C:cwd -f -json -m -mod -modfile:read -o:write"), long_single_dash=True)),
    "get": spec("data", values=data("-C:cwd -modfile:read"), long_single_dash=True),
}


def _python(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    if "-m" in seen:
        _python_m(ctx, ops, seen)
        module = seen["-m"][0].text if seen["-m"] else ""
        from jobgov.policy.model_tables import MODEL  # the whole model, which includes this module's

        tool = MODEL.get(module.replace("_", "-"))
        if tool is not None:  # python -m pytest ARGS reads ARGS as pytest does
            read_with(ctx, tool, ops)
        return
    if ops and ops[0].text.rsplit("/", 1)[-1] == "setup.py" and any(
            w.text in ("install", "develop", "easy_install", "upload", "register") for w in ops[1:]):
        ctx.unknown("setup.py install/develop/upload writes outside the worktree or publishes")
    _RUN_PYTHON(ctx, ops, seen)


_RUN_PYTHON = interpreter(("-c", "-m"))


_PY = spec(_python, posix=True, values="-c:code -m:data -W:data -X:data -Q:data", effects={"-m": "project"},
           stops_after="-c -m")


_NODE = spec(interpreter(("-e", "--eval", "-p", "--print")), posix=True,
             values="-e:code --eval:code -p:code --print:code -r:program --require:program --import:program "
                    "--loader:program --experimental-loader:program --input-type:data -C:data --conditions:data "
                    "--env-file:read",
             effects={"-r": "project", "--require": "project", "--import": "project", "--loader": "project",
                      "--experimental-loader": "project"})


_SCRIPTED = {
    "perl": spec(interpreter(("-e", "-E")), posix=True, values="-e:code -E:code -I:read -M -m -x"),
    "ruby": spec(interpreter(("-e",)), posix=True, values="-e:code -I:read -r -C:cwd -E"),
    "php": spec(interpreter(("-r", "-R", "-B", "-E")), posix=True,
                values="-r:code -R:code -B:code -E:code -d -c:read -S -t:read"),
    "lua": spec(interpreter(("-e",)), posix=True, values="-e:code -l"),
    "luajit": spec(interpreter(("-e",)), posix=True, values="-e:code -l"),
    "Rscript": spec(interpreter(("-e", "--expr")), posix=True, values="-e:code --expr:code"),
    "julia": spec(interpreter(("-e", "-E", "--eval", "--print")), posix=True,
                  values="-e:code -E:code --eval:code --print:code --project -t --threads"),
    "tclsh": spec(interpreter(()), posix=True),
    "bash": spec(_shell, posix=True, values="-c:command -O -o --rcfile:program --init-file:program"),
}


for _name in ("sh", "zsh", "dash", "ksh", "mksh", "ash", "yash", "fish"):
    _SCRIPTED[_name] = _SCRIPTED["bash"]


def _curl(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """curl's operands are URLs (``file://`` ones are local reads); ``-O`` saves each under its own
    name here; ``-d @FILE``, ``-F name=@FILE``/``<FILE`` upload a local file."""
    remote_name = any(opt in seen for opt in ("-O", "--remote-name", "--remote-name-all"))
    for word in [*ops, *seen.get("--url", [])]:
        _url_operand(ctx, word, remote_name)
    for opt in ("-d", "--data", "--data-binary", "--data-raw", "--data-urlencode", "-F", "--form", "--json"):
        for value in seen.get(opt, []):
            text = value.text.split("=", 1)[1] if opt in ("-F", "--form", "--data-urlencode") and "=" in value.text \
                else value.text
            if text.startswith(("@", "<")) and opt != "--data-raw":
                path = text[1:].split(";", 1)[0]
                if path != "-":
                    ctx.path(Word(path, value.dynamic, value.glob), "read")


def _url_operand(ctx: Context, word: Word, saved_here: bool) -> None:
    scheme, sep, rest = word.text.partition("://")
    if sep and scheme.lower() == "file":
        ctx.path(Word("/" + rest.partition("/")[2], word.dynamic, word.glob), "read")
    elif saved_here:
        name = posixpath.basename(rest.partition("?")[0]) if sep else posixpath.basename(word.text)
        ctx.path(Word(name or "index.html", word.dynamic, word.glob), "write")


def _wget(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """wget saves each URL under its own name here (unless -O/-P say where)."""
    named = any(opt in seen for opt in ("-O", "--output-document", "-P", "--directory-prefix"))
    for word in ops:
        _url_operand(ctx, word, not named)


#: The programs of the model, by command name.
PROGRAMS: dict[str, Spec] = {
    # Interpreters (a file is the project's own code; inline programs are code jobgov cannot judge).
    **dict.fromkeys("python pypy".split(), _PY),
    "node": _NODE,
    "nodejs": _NODE,
    "deno": spec("data", subcommands={
        **dict.fromkeys("run test bench serve task compile".split(),
                        spec(first_is("program", "data"), posix=True, does="project",
                             values="--config:read -c:read --import-map:read")),
        "eval": spec("code"),
        **dict.fromkeys("fmt lint check info doc types coverage --version".split(), spec("read")),
    }),
    **_SCRIPTED,
    "source": spec(first_is("program", "data")),
    ".": spec(first_is("program", "data")),
    # Builds, tests and linters: the project's own code (their configuration or the tests).
    **dict.fromkeys("make gmake".split(), spec(_make, values=data("-C:cwd --directory:cwd -f:program --file:program "
                                                                  "--makefile:program -j --jobs -l -o -W -I:read "
                                                                  "--eval:code -E:code"),
                                                 effects={"--eval": "code", "-E": "code"}, does="project")),
    "ghc": spec("read", values="-o:write -e:code -i:read -outputdir:write", does="project"),
    "pre-commit": spec("data", subcommands={
        **dict.fromkeys("--version -V help".split(), spec("data")),
        **dict.fromkeys("run install autoupdate try-repo gc clean init-templatedir install-hooks uninstall "
                        "validate-config validate-manifest migrate-config sample-config".split(),
                        spec(unknown_use("pre-commit installs hooks and their environments (it fetches them) "
                                         "before running them"))),
    }),
    "javac": spec("read", long_single_dash=True,
                  values="-d:write -s:write -h:write -cp:read -classpath:read --class-path:read "
                         "-processorpath:read --processor-path:read -sourcepath:read --source-path:read "
                         "-processor:data -encoding:data -source:data -target:data --release:data -Xlint:data",
                  effects={"-processor": "project"}, does="project"),
    **dict.fromkeys("pytest py.test jest vitest mocha ava playwright cypress karma tap jasmine "
                    "eslint prettier webpack vite next nuxt rollup esbuild parcel tsx ts-node turbo nx "
                    "lerna gulp grunt rake invoke task meson ninja scons bazel coverage "
                    "uvicorn gunicorn flask django-admin alembic sphinx-build mkdocs "
                    "buck ctest mvn mvnw gradle gradlew ant sbt lein mix elixir erl rebar3 dotnet swift "
                    "xcodebuild flutter dart gcc g++ cc c++ clang clang++ rustc "
                    "kotlinc scalac zig nim crystal".split(),
                    # Operands are test files, sources, targets or names: read (a name resolves inside).
                    spec("read", values=data("-c:read --config:read -o:write --output:write -C:cwd --rootdir:read "
                                           "--basetemp:write -p:program -k -m -n --maxfail --tb -j -e -f:read "
                                           "-I:read "
                                           "-L:read -D -t -T --tests --cov --cov-report --junitxml:write "
                                           "--outfile:write --out-dir:write --outDir:write --plugin:program "
                                           "-r:program --require:program --import:program --setupFiles:program "
                                           "--confcutdir:read --cache-dir:write"),
                         does="project")),
    **dict.fromkeys("ruff black isort flake8 pylint mypy pyright pyflakes pycodestyle pydocstyle bandit "
                    "autopep8 yapf tsc shellcheck shfmt hadolint yamllint markdownlint codespell "
                    "clang-format gofmt goimports golint staticcheck rustfmt ktlint stylelint biome".split(),
                    spec("read", values="--config:read -c:read --config-file:read --rcfile:read -p:read "
                                        "--project:read --select --ignore --extend-select --target-version "
                                        "--line-length -l --max-line-length --exclude --extend-exclude "
                                        "--format --output-format -o:write --output:write --cache-dir:write "
                                        "--profile --settings-path:read -j --jobs -S --severity -e -x -t "
                                        "--include --style --outDir:write --outFile:write --tsBuildInfoFile:write",
                         effects={"--fix": "write", "-w": "write", "--write": "write", "-i": "write",
                                  "--in-place": "write"})),
    "cargo": spec("data", values="-C:cwd --manifest-path:read", subcommands=_CARGO_SUBS),
    "go": spec("data", subcommands=_GO_SUBS),
    "npm": _NPM,
    **dict.fromkeys("pnpm yarn".split(), _YARN),
    # bun is a package manager and a JavaScript runtime: -e/--eval is inline code.
    "bun": Spec(operands="data", values=_BUN_VALUES, fallback=_JS_RUN,
                subcommands={**_JS_SUBS, "x": spec("data", posix=True, does="project")}),
    **dict.fromkeys("npx bunx pnpx".split(), spec(_npx, posix=True, values=data("-p --package -c:code --call:code"),
                                                 does="project")),
    # Python packaging: runners are judged by the install/network tables and the shell analyser.
    **dict.fromkeys("pip pip3".split(), spec("data", values="-r:read --requirement:read -c:read "
                                                            "--constraint:read -t:write --target:write "
                                                            "--prefix:write --root:write -e:read "
                                                            "--editable:read -i --index-url --extra-index-url "
                                                            "--timeout --retries --proxy --cache-dir:write "
                                                            "--log:write -d:write --dest:write "
                                                            "--src:write --python-version --platform")),
    **dict.fromkeys("uv poetry pipenv pdm hatch rye conda mamba micromamba pipx uvx".split(),
                    spec("data", values="--directory:cwd -C:cwd --project:cwd --python -p --with "
                                        "--with-requirements:read --index --index-url --extra-index-url "
                                        "--default-index -n --name --prefix:write --cache-dir:write "
                                        "--env-file:read --package --extra --group",
                         does="project")),
    # Network and system package clients (their network or install nature comes from the install and
    # network tables; modelled here so their paths are known).
    "curl": spec(_curl, values="-o:write --output:write -T:read --upload-file:read -d:data --data:data "
                               "--data-binary:data --data-raw:data --data-urlencode:data -F:data --form:data "
                               "--json:data -H:data --header:data -X:data --request:data -u:data --user:data "
                               "-A:data --user-agent:data -e:data --referer:data -b:data -c:write --cookie-jar:write "
                                "-K:read --config:read -m --max-time --connect-timeout --retry -w --write-out "
                                "--output-dir:write -x --proxy --cacert:read --cert:read --key:read "
                                "--resolve:data --url:data --limit-rate:data -r:data --range:data -D:write "
                                "--dump-header:write --stderr:write --trace:write --trace-ascii:write --libcurl:write "
                                "-w:data --write-out:data -m:data --max-time:data --connect-timeout:data "
                                "--retry:data -x:data --proxy:data -K:read --config:read -b:data --cookie:data"),
    "wget": spec(_wget, values=data("-O:write --output-document:write -P:write --directory-prefix:write "
                                  "-o:write --output-file:write -a:write --append-output:write -i:read "
                                  "--input-file:read -U --user-agent --header -t --tries -T --timeout "
                                  "--post-data --post-file:read -e:code --execute:code --load-cookies:read "
                                  "--save-cookies:write -l --level -A -R --use-askpass:code"),
                 effects={"-e": "code", "--execute": "code", "--use-askpass": "code"}),
}
