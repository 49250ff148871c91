"""Tests for jobgov.policy.shell: every way a command line can hide a command or a path."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from jobgov.policy.shell import PathRef, Segment, ShellAnalysis, analyze


@dataclass(frozen=True)
class S:
    """An expected segment. ``paths`` are ``"kind:raw"`` strings, ``?`` suffix = dynamic."""

    argv: tuple[str, ...]
    cwd: str | None = None
    paths: tuple[str, ...] = ()
    install: bool = False
    network: bool = False
    wrappers: tuple[str, ...] = ()
    dynamic_args: bool = False
    cwd_dynamic: bool = False
    text: str | None = None  # checked only when given


def s(*argv: str, **kw: object) -> S:
    return S(tuple(argv), **kw)  # type: ignore[arg-type]


def _ref(spec: str) -> PathRef:
    kind, _, raw = spec.partition(":")
    dynamic = raw.endswith("?")
    return PathRef(raw[:-1] if dynamic else raw, kind, dynamic)  # type: ignore[arg-type]


def _check(segment: Segment, want: S) -> None:
    got = (segment.argv, segment.cwd, segment.paths, segment.install, segment.network,
           segment.wrappers, segment.dynamic_args, segment.cwd_dynamic)
    expected = (want.argv, want.cwd, tuple(_ref(p) for p in want.paths), want.install, want.network,
                want.wrappers, want.dynamic_args, want.cwd_dynamic)
    assert got == expected
    if want.text is not None:
        assert segment.text == want.text


#: Commands whose segments are all found but which the closed world refuses to judge: the analysis
#: error names why (an unknown upper-case variable, a function definition, arithmetic on a value).
CLOSED_WORLD_ERRORS = {
    "FOO=$(id) make": "sets FOO, a variable jobgov does not know",
    "export A=$(id) B=1": "sets A, a variable jobgov does not know",
    "echo $((1 + $(id -u)))": "evaluates arithmetic on a variable",
    "f() { rm -rf x; }; f": "defines a shell function f",
    "function g { curl x; }": "defines a shell function g",
    "(( n = $(id -u) ))": "evaluates arithmetic on a variable",
    "A=1 B=2": "sets A, a variable jobgov does not know",
    "env -i A=1 B=/x rm ./y": "sets A, a variable jobgov does not know",
    "FOO=1 BAR=2 rm x": "sets FOO, a variable jobgov does not know",
    "env -i A=1 timeout 5 nice -n 5 nohup sudo rm ~/x": "sets A, a variable jobgov does not know",
    "export TOOLS=/opt/bin:$PATH": "sets TOOLS, a variable jobgov does not know",
    "f() { cd /; }; ls": "defines a shell function f",
}


def _no_error(command: str, result: ShellAnalysis) -> None:
    """The analysis has no error, or exactly the closed-world one this command is known for."""
    if command in CLOSED_WORLD_ERRORS:
        assert result.error is not None and CLOSED_WORLD_ERRORS[command] in result.error, result.error
    else:
        assert result.error is None


def _assert(result: ShellAnalysis, expected: list[S]) -> None:
    assert [seg.argv for seg in result.segments] == [want.argv for want in expected]
    for segment, want in zip(result.segments, expected, strict=True):
        _check(segment, want)


# --- commands hidden by shell syntax -------------------------------------------------------

SPLITTING: list[tuple[str, list[S]]] = [
    ("ls -la", [s("ls", "-la")]),
    ("git status && git push", [s("git", "status"), s("git", "push", network=True)]),
    ("make || rm -rf build", [s("make"), s("rm", "-rf", "build")]),
    ("a; b; c", [s("a"), s("b"), s("c")]),
    ("sleep 1 & rm x", [s("sleep", "1"), s("rm", "x")]),
    ("a\nb", [s("a"), s("b")]),
    ("cat f | grep x | wc -l", [s("cat", "f"), s("grep", "x"), s("wc", "-l")]),
    ("ls |& tee log", [s("ls"), s("tee", "log")]),
    ("(rm a; ls)", [s("rm", "a"), s("ls")]),
    ("{ rm a; ls; }", [s("rm", "a"), s("ls")]),
    ("echo $(rm x)", [s("rm", "x"), s("echo", "$(rm x)", dynamic_args=True)]),
    ("echo `rm x`", [s("rm", "x"), s("echo", "`rm x`", dynamic_args=True)]),
    ('echo "a $(id) `whoami`"', [s("id"), s("whoami"), s("echo", "a $(id) `whoami`", dynamic_args=True)]),
    ("x=$(curl evil)", [s("curl", "evil", network=True)]),
    ("FOO=$(id) make", [s("id"), s("make")]),
    ("export A=$(id) B=1", [s("id"), s("export", "A=$(id)", "B=1", dynamic_args=True)]),
    ("local v=1", [s("local", "v=1")]),
    ("unset A", [s("unset", "A")]),
    ("echo ${X:-$(id)}", [s("id"), s("echo", "${X:-$(id)}", dynamic_args=True)]),
    ("echo $((1 + $(id -u)))", [s("id", "-u"), s("echo", "$((1 + $(id -u)))", dynamic_args=True)]),
    ("echo $(echo $(rm deep))", [s("rm", "deep"), s("echo", "$(rm deep)", dynamic_args=True),
                                 s("echo", "$(echo $(rm deep))", dynamic_args=True)]),
    ("ls > $(rm x)", [s("rm", "x"), s("ls", paths=("redirect-write:$(rm x)?",))]),
    ("diff <(ls a) <(rm b)", [s("ls", "a"), s("rm", "b"), s("diff", "<(ls a)", "<(rm b)", dynamic_args=True)]),
    ("cat < <(curl x)", [s("curl", "x", network=True), s("cat")]),
    ("if [[ -f /x ]]; then rm a; elif test -d b; then ls; else c; fi",
     [s("[[", "-f", "/x", "]]", paths=("arg:/x",)), s("rm", "a"), s("test", "-d", "b"), s("ls"), s("c")]),
    ("[ -d ~/y ] && rm z", [s("[", "-d", "~/y", "]", paths=("arg:~/y",)), s("rm", "z")]),
    ("while true; do curl x; done", [s("true"), s("curl", "x", network=True)]),
    ("until false; do rm x; done", [s("false"), s("rm", "x")]),
    ("for f in $(ls); do rm $f; done", [s("ls"), s("rm", "$f", dynamic_args=True)]),
    ("case $x in a) rm y;; *) ls;; esac", [s("rm", "y"), s("ls")]),
    ("f() { rm -rf x; }; f", [s("rm", "-rf", "x"), s("f")]),
    ("function g { curl x; }", [s("curl", "x", network=True)]),
    ("! rm x", [s("rm", "x")]),
    ("time rm x", [s("rm", "x", wrappers=("time",))]),
    ("(( n = $(id -u) ))", [s("id", "-u")]),
    ("ls # rm -rf /", [s("ls")]),
    ("# only a comment", []),
    ("A=1 B=2", []),
]


@pytest.mark.parametrize(("command", "expected"), SPLITTING)
def test_every_simple_command_is_a_segment(command: str, expected: list[S]) -> None:
    result = analyze(command)
    _no_error(command, result)
    _assert(result, expected)


# --- quoting -------------------------------------------------------------------------------

QUOTING: list[tuple[str, tuple[str, ...]]] = [
    ("\\rm -rf x", ("rm", "-rf", "x")),
    ('r""m x', ("rm", "x")),
    ("'r'm x", ("rm", "x")),
    ("$'\\x72m' x", ("rm", "x")),
    ('$"rm" x', ("rm", "x")),
    ("echo 'a b' a\\ b", ("echo", "a b", "a b")),
    ('echo "x\\"y"', ("echo", 'x"y')),
    ("echo $'a\\tb'", ("echo", "a\tb")),
    ('"$HOME"/bin/tool', ("$HOME/bin/tool",)),
]


@pytest.mark.parametrize(("command", "argv"), QUOTING)
def test_quotes_and_escapes_are_removed(command: str, argv: tuple[str, ...]) -> None:
    result = analyze(command)
    assert result.error is None
    assert [seg.argv for seg in result.segments] == [argv]


# --- shells, eval and friends ----------------------------------------------------------------

NESTED: list[tuple[str, list[S]]] = [
    ("bash -c 'rm -rf ~/'", [s("bash", "-c", "rm -rf ~/"), s("rm", "-rf", "~/", paths=("arg:~/",))]),
    ('sh -c "curl x | tar x"', [s("sh", "-c", "curl x | tar x"), s("curl", "x", network=True), s("tar", "x")]),
    ("zsh -c 'ls'", [s("zsh", "-c", "ls"), s("ls")]),
    ("dash -c 'rm a'", [s("dash", "-c", "rm a"), s("rm", "a")]),
    ("bash -lc 'cd /tmp && rm x'",
     [s("bash", "-lc", "cd /tmp && rm x"), s("cd", "/tmp", paths=("cd:/tmp",)), s("rm", "x", cwd="/tmp")]),
    ("bash -e -c 'rm a' arg0", [s("bash", "-e", "-c", "rm a", "arg0"), s("rm", "a")]),
    ("/bin/bash -c 'rm a'", [s("/bin/bash", "-c", "rm a"), s("rm", "a")]),
    ("eval 'rm -rf /'", [s("eval", "rm -rf /"), s("rm", "-rf", "/", paths=("arg:/",))]),
    ("eval rm -rf x", [s("eval", "rm", "-rf", "x"), s("rm", "-rf", "x")]),
    ("bash -c \"bash -c 'curl x'\"",
     [s("bash", "-c", "bash -c 'curl x'"), s("bash", "-c", "curl x"), s("curl", "x", network=True)]),
    ("sudo -u root bash -c 'rm /x'",
     [s("bash", "-c", "rm /x", wrappers=("sudo",)), s("rm", "/x", paths=("arg:/x",))]),
    ("bash <<EOF\nrm -rf /\nEOF", [s("bash"), s("rm", "-rf", "/", paths=("arg:/",))]),
    ("sh <<< 'curl x'", [s("sh"), s("curl", "x", network=True)]),
    ("bash script.sh", [s("bash", "script.sh")]),
    ("bash < run.sh", [s("bash", paths=("redirect-read:run.sh",))]),
    ("watch -n 1 'ls | wc -l'", [s("watch", "-n", "1", "ls | wc -l"), s("ls"), s("wc", "-l")]),
    ("flock /tmp/l -c 'rm x'", [s("flock", "/tmp/l", "-c", "rm x", paths=("arg:/tmp/l",)), s("rm", "x")]),
    ("su -c 'rm /x' root", [s("su", "-c", "rm /x", "root"), s("rm", "/x", paths=("arg:/x",))]),
    ("env -S 'rm -rf /'", [s("env", "-S", "rm -rf /"), s("rm", "-rf", "/", paths=("arg:/",))]),
    ("python -c 'import os'", [s("python", "-c", "import os")]),
    ("bash -c $'rm x\\nrm y'", [s("bash", "-c", "rm x\nrm y"), s("rm", "x"), s("rm", "y")]),
    ("trap 'rm -rf /tmp/x' EXIT", [s("trap", "rm -rf /tmp/x", "EXIT"), s("rm", "-rf", "/tmp/x", paths=("arg:/tmp/x",))]),
    ("trap - EXIT", [s("trap", "-", "EXIT")]),
]


@pytest.mark.parametrize(("command", "expected"), NESTED)
def test_shell_strings_are_analysed(command: str, expected: list[S]) -> None:
    result = analyze(command)
    assert result.error is None
    _assert(result, expected)


# --- wrappers ------------------------------------------------------------------------------

WRAPPED: list[tuple[str, S]] = [
    ("sudo rm -rf /", s("rm", "-rf", "/", paths=("arg:/",), wrappers=("sudo",), text="sudo rm -rf /")),
    ("sudo -E -u bob -- rm x", s("rm", "x", wrappers=("sudo",))),
    ("sudo -Eu bob rm x", s("rm", "x", wrappers=("sudo",))),
    ("/usr/bin/sudo /bin/rm x", s("/bin/rm", "x", wrappers=("sudo",))),
    ("doas rm x", s("rm", "x", wrappers=("doas",))),
    ("env -i A=1 B=/x rm ./y", s("rm", "./y", paths=("arg:./y",), wrappers=("env",))),
    ("env -C /etc rm passwd", s("rm", "passwd", cwd="/etc", paths=("arg:/etc",), wrappers=("env",))),
    ("sudo -D /etc rm passwd", s("rm", "passwd", cwd="/etc", paths=("arg:/etc",), wrappers=("sudo",))),
    ("timeout 5 curl x", s("curl", "x", network=True, wrappers=("timeout",))),
    ("timeout -s KILL -k 1 5s rm x", s("rm", "x", wrappers=("timeout",))),
    ("nohup rm x", s("rm", "x", wrappers=("nohup",))),
    ("nice -n 10 rm x", s("rm", "x", wrappers=("nice",))),
    ("nice -10 rm x", s("rm", "x", wrappers=("nice",))),
    ("command rm x", s("rm", "x", wrappers=("command",))),
    ("exec rm x", s("rm", "x", wrappers=("exec",))),
    ("exec -a name rm x", s("rm", "x", wrappers=("exec",))),
    ("builtin echo hi", s("echo", "hi", wrappers=("builtin",))),
    ("stdbuf -oL grep x f", s("grep", "x", "f", wrappers=("stdbuf",))),
    ("time -p rm x", s("rm", "x", wrappers=("time",))),
    ("strace -f -o /tmp/t rm x", s("rm", "x", paths=("arg:/tmp/t",), wrappers=("strace",))),
    ("watch -x rm x", s("rm", "x", wrappers=("watch",))),
    ("ionice -c3 rm x", s("rm", "x", wrappers=("ionice",))),
    ("chroot /srv rm x", s("rm", "x", paths=("arg:/srv",), wrappers=("chroot",))),
    ("flock /tmp/l rm x", s("rm", "x", paths=("arg:/tmp/l",), wrappers=("flock",))),
    ("setsid curl x", s("curl", "x", network=True, wrappers=("setsid",))),
    ("FOO=1 BAR=2 rm x", s("rm", "x", text="FOO=1 BAR=2 rm x")),
    ("env -i A=1 timeout 5 nice -n 5 nohup sudo rm ~/x",
     s("rm", "~/x", paths=("arg:~/x",), wrappers=("env", "timeout", "nice", "nohup", "sudo"))),
    ("sudo apt-get install -y curl", s("apt-get", "install", "-y", "curl", install=True, wrappers=("sudo",))),
    ("command -v rm", s("command", "-v", "rm")),
    ("sudo -l", s("sudo", "-l")),
    ("sudo", s("sudo")),
    ("env", s("env")),
    ("timeout 10", s("timeout", "10")),
]


@pytest.mark.parametrize(("command", "expected"), WRAPPED)
def test_wrappers_are_stripped_to_the_real_command(command: str, expected: S) -> None:
    result = analyze(command)
    _no_error(command, result)
    _assert(result, [expected])


SPAWNING: list[tuple[str, list[S]]] = [
    ("find . -name '*.pyc' -exec rm {} \\;",
     [s("find", ".", "-name", "*.pyc", "-exec", "rm", "{}", ";", paths=("arg:.",)),
      s("rm", "{}", dynamic_args=True)]),
    ("find /etc -exec cat {} + -o -execdir chmod 600 {} \\;",
     [s("find", "/etc", "-exec", "cat", "{}", "+", "-o", "-execdir", "chmod", "600", "{}", ";", paths=("arg:/etc",)),
      s("cat", "{}", dynamic_args=True), s("chmod", "600", "{}", dynamic_args=True)]),
    ("find . -ok sudo rm {} \\;",
     [s("find", ".", "-ok", "sudo", "rm", "{}", ";", paths=("arg:.",)),
      s("rm", "{}", wrappers=("sudo",), dynamic_args=True)]),
    ("find . -exec sh -c 'curl x' \\;",
     [s("find", ".", "-exec", "sh", "-c", "curl x", ";", paths=("arg:.",)),
      s("sh", "-c", "curl x", dynamic_args=True), s("curl", "x", network=True)]),
    ("ls | xargs rm -f", [s("ls"), s("xargs", "rm", "-f"), s("rm", "-f", dynamic_args=True)]),
    ("xargs -0 -n 1 -I {} curl {}",
     [s("xargs", "-0", "-n", "1", "-I", "{}", "curl", "{}"), s("curl", "{}", network=True, dynamic_args=True)]),
    ("xargs -a list.txt rm", [s("xargs", "-a", "list.txt", "rm"), s("rm", dynamic_args=True)]),
    ("xargs", [s("xargs")]),
    ("uv run rm -rf /", [s("uv", "run", "rm", "-rf", "/", paths=("arg:/",)), s("rm", "-rf", "/", paths=("arg:/",))]),
    ("uv run --with rich python x.py",
     [s("uv", "run", "--with", "rich", "python", "x.py", install=True), s("python", "x.py")]),
    ("poetry run pytest -q", [s("poetry", "run", "pytest", "-q"), s("pytest", "-q")]),
    ("bundle exec rake", [s("bundle", "exec", "rake"), s("rake")]),
]


@pytest.mark.parametrize(("command", "expected"), SPAWNING)
def test_commands_run_by_commands_are_segments_too(command: str, expected: list[S]) -> None:
    result = analyze(command)
    assert result.error is None
    _assert(result, expected)


# --- heredocs ------------------------------------------------------------------------------

HEREDOCS: list[tuple[str, list[S]]] = [
    ("cat <<EOF\n$(rm x)\nEOF", [s("rm", "x"), s("cat")]),
    ("cat <<EOF\n  indented $(curl x)\nEOF", [s("curl", "x", network=True), s("cat")]),
    ("cat <<EOF\nuse `npm test`\nEOF", [s("npm", "test"), s("cat")]),
    ("cat <<-EOF\n\t$(id)\n\tEOF", [s("id"), s("cat")]),
    ("cat <<EOF > /tmp/out\n`rm -rf /`\nEOF",
     [s("rm", "-rf", "/", paths=("arg:/",)), s("cat", paths=("redirect-write:/tmp/out",))]),
    ('cat <<EOF\n$(echo ")")\nEOF', [s("echo", ")"), s("cat")]),
    ("cat <<'EOF'\n$(rm x) `id`\nEOF", [s("cat")]),
    ('cat <<"EOF"\n$(rm x)\nEOF', [s("cat")]),
    ("cat <<\\EOF\n$(rm x)\nEOF", [s("cat")]),
    ("cat <<< \"$(id)\"", [s("id"), s("cat")]),
    ("cat <<< hello", [s("cat")]),
]


@pytest.mark.parametrize(("command", "expected"), HEREDOCS)
def test_heredoc_bodies_are_searched_for_substitutions(command: str, expected: list[S]) -> None:
    result = analyze(command)
    assert result.error is None
    _assert(result, expected)


# --- paths ---------------------------------------------------------------------------------

PATHS: list[tuple[str, tuple[str, ...]]] = [
    ("echo hi > /etc/passwd", ("redirect-write:/etc/passwd",)),
    ("echo key >> ~/.ssh/authorized_keys", ("redirect-write:~/.ssh/authorized_keys",)),
    ("ls &> out.log", ("redirect-write:out.log",)),
    ("ls &>> out.log", ("redirect-write:out.log",)),
    ("ls >| f", ("redirect-write:f",)),
    ("ls 2> err.txt", ("redirect-write:err.txt",)),
    ("ls >& all.txt", ("redirect-write:all.txt",)),
    ("exec 3> /tmp/fd3", ("redirect-write:/tmp/fd3",)),
    ("sort < /etc/shadow", ("redirect-read:/etc/shadow",)),
    ("cat 0< in.txt", ("redirect-read:in.txt",)),
    ("ls 2>&1 1>/dev/null", ()),
    ("ls > /dev/stderr < /dev/null 2> /dev/tty > /dev/fd/3", ()),
    ("cat > \"$OUT\"", ("redirect-write:$OUT?",)),
    ("cat > $DIR/x", ("redirect-write:$DIR/x?",)),
    ("cat > \"$HOME/notes\"", ("redirect-write:$HOME/notes",)),
    ("cat /etc/passwd", ("arg:/etc/passwd",)),
    ("cat ./a ../b . .. src/c", ("arg:./a", "arg:../b", "arg:.", "arg:..", "arg:src/c")),
    ("cat plain", ()),
    ("cat ~ ~/x ~user/y", ("arg:~", "arg:~/x", "arg:~user/y")),
    ("rm -rf $HOME", ("arg:$HOME",)),
    ("cat $HOME/a ${HOME}/b \"$HOME/c\"", ("arg:$HOME/a", "arg:${HOME}/b", "arg:$HOME/c")),
    ("cat $X/y", ("arg:$X/y?",)),
    ("cat ${X}/y", ("arg:${X}/y?",)),
    ("cat \"$(pwd)/x\" `pwd`/y", ("arg:$(pwd)/x?", "arg:`pwd`/y?")),
    ("cat a/$X", ("arg:a/$X?",)),
    ("ls /etc/*.conf *.py", ("arg:/etc/*.conf",)),
    ("cat {/etc/passwd,x}", ("arg:/etc/passwd",)),  # braces are expanded statically
    ("cp --target-directory=/etc x", ("arg:/etc",)),
    ("gcc -I./include -o/tmp/a.out x.c", ("arg:./include", "arg:/tmp/a.out")),
    ("tool --name=plain", ()),
    ("dd if=in.img of=/dev/sda", ("arg:/dev/sda",)),
    ("curl https://example.com/a/b -o out/f", ("arg:out/f",)),
    ("curl file:///etc/passwd", ()),
    ("git clone git@github.com:org/repo.git ./dst", ("arg:./dst",)),
    ("scp notes.txt host:/tmp/x", ()),
    ("cp notes.txt host:/tmp/x", ("arg:host:/tmp/x",)),
    ("cat /dev/null", ()),
    ("ls > x y", ("redirect-write:x",)),
    ("./scripts/build.sh --fast", ()),
    ("export TOOLS=/opt/bin:$PATH", ()),
]


@pytest.mark.parametrize(("command", "paths"), PATHS)
def test_paths(command: str, paths: tuple[str, ...]) -> None:
    result = analyze(command)
    _no_error(command, result)
    assert result.segments[-1].paths == tuple(_ref(p) for p in paths)


def test_stray_words_after_a_redirect_target_are_arguments() -> None:
    (segment,) = analyze("ls > x y 2>/dev/null z").segments
    assert segment.argv == ("ls", "y", "z")
    assert segment.paths == (PathRef("x", "redirect-write"),)


REDIRECT_OWNER: list[tuple[str, list[S]]] = [
    ("a | b > f", [s("a"), s("b", paths=("redirect-write:f",), text="b > f")]),
    ("a && b > f", [s("a"), s("b", paths=("redirect-write:f",), text="b > f")]),
    ("a > f && b", [s("a", paths=("redirect-write:f",)), s("b")]),
    ("a && ! b > f", [s("a"), s("b", paths=("redirect-write:f",))]),
    ("(cd /tmp && echo x > f)",
     [s("cd", "/tmp", paths=("cd:/tmp",)), s("echo", "x", cwd="/tmp", paths=("redirect-write:f",))]),
    ("> /etc/passwd", [s(paths=("redirect-write:/etc/passwd",))]),
    ("{ cd /tmp; ls; } > out",
     [s(paths=("redirect-write:out",)), s("cd", "/tmp", paths=("cd:/tmp",)), s("ls", cwd="/tmp")]),
    ("while read l; do echo $l; done < /etc/hosts",
     [s(paths=("redirect-read:/etc/hosts",)), s("read", "l"), s("echo", "$l", dynamic_args=True)]),
    ("cd /tmp && cat < in | wc > out; ls",
     [s("cd", "/tmp", paths=("cd:/tmp",)), s("cat", cwd="/tmp", paths=("redirect-read:in",)),
      s("wc", cwd="/tmp", paths=("redirect-write:out",)), s("ls", cwd="/tmp")]),
]


@pytest.mark.parametrize(("command", "expected"), REDIRECT_OWNER)
def test_redirects_belong_to_the_command_bash_gives_them_to(command: str, expected: list[S]) -> None:
    result = analyze(command)
    assert result.error is None
    _assert(result, expected)


# --- working directory -------------------------------------------------------------------------

CWD: list[tuple[str, list[S]]] = [
    ("cd src && touch x", [s("cd", "src", paths=("cd:src",)), s("touch", "x", cwd="src")]),
    ("cd a; cd b; cd ../c; ls",
     [s("cd", "a", paths=("cd:a",)), s("cd", "b", cwd="a", paths=("cd:b",)),
      s("cd", "../c", cwd="a/b", paths=("cd:../c",)), s("ls", cwd="a/b/../c")]),
    ("cd a; cd /abs; ls",
     [s("cd", "a", paths=("cd:a",)), s("cd", "/abs", cwd="a", paths=("cd:/abs",)), s("ls", cwd="/abs")]),
    ("cd a; cd ~/p; ls",
     [s("cd", "a", paths=("cd:a",)), s("cd", "~/p", cwd="a", paths=("cd:~/p",)), s("ls", cwd="~/p")]),
    ("cd a; cd $HOME/p; ls",
     [s("cd", "a", paths=("cd:a",)), s("cd", "$HOME/p", cwd="a", paths=("cd:$HOME/p",)), s("ls", cwd="$HOME/p")]),
    ("cd; ls", [s("cd", paths=("cd:~",)), s("ls", cwd="~")]),
    ("cd -; ls", [s("cd", "-", paths=("cd:-?",)), s("ls", cwd="$OLDPWD", cwd_dynamic=True)]),
    ("cd $X; ls; cd sub; ls",
     [s("cd", "$X", paths=("cd:$X?",), dynamic_args=True), s("ls", cwd="$X", cwd_dynamic=True),
      s("cd", "sub", cwd="$X", cwd_dynamic=True, paths=("cd:sub",)), s("ls", cwd="$X/sub", cwd_dynamic=True)]),
    ("cd -P /x; ls", [s("cd", "-P", "/x", paths=("cd:/x",)), s("ls", cwd="/x")]),
    ('cd "my dir"; ls', [s("cd", "my dir", paths=("cd:my dir",)), s("ls", cwd="my dir")]),
    ("(cd /tmp; rm x); rm y",
     [s("cd", "/tmp", paths=("cd:/tmp",)), s("rm", "x", cwd="/tmp"), s("rm", "y")]),
    ("x=$(cd /; ls); ls", [s("cd", "/", paths=("cd:/",)), s("ls", cwd="/"), s("ls")]),
    ("cd a | ls; ls", [s("cd", "a", paths=("cd:a",)), s("ls"), s("ls")]),
    ("cd a & ls", [s("cd", "a", paths=("cd:a",)), s("ls")]),
    ("{ cd /etc; }; cat passwd", [s("cd", "/etc", paths=("cd:/etc",)), s("cat", "passwd", cwd="/etc")]),
    ("if cd /x; then ls; fi; rm y", [s("cd", "/x", paths=("cd:/x",)), s("ls", cwd="/x"), s("rm", "y", cwd="/x")]),
    ("f() { cd /; }; ls", [s("cd", "/", paths=("cd:/",)), s("ls")]),
    ("builtin cd /x; ls", [s("cd", "/x", paths=("cd:/x",), wrappers=("builtin",)), s("ls", cwd="/x")]),
    ("sudo cd /x; ls", [s("cd", "/x", paths=("arg:/x",), wrappers=("sudo",)), s("ls")]),
    ("pushd a; ls; popd; ls",
     [s("pushd", "a", paths=("cd:a",)), s("ls", cwd="a"), s("popd", cwd="a"), s("ls")]),
    ("popd; ls", [s("popd", paths=("cd:${DIRSTACK[1]}?",)), s("ls", cwd="${DIRSTACK[1]}", cwd_dynamic=True)]),
    ("pushd a; pushd b; popd; ls",
     [s("pushd", "a", paths=("cd:a",)), s("pushd", "b", cwd="a", paths=("cd:b",)),
      s("popd", cwd="a/b"), s("ls", cwd="a")]),
    ("pushd +1; ls", [s("pushd", "+1", paths=("cd:+1?",)), s("ls", cwd="${DIRSTACK[0]}", cwd_dynamic=True)]),
    ("cd /w && bash -c 'rm x'",
     [s("cd", "/w", paths=("cd:/w",)), s("bash", "-c", "rm x", cwd="/w"), s("rm", "x", cwd="/w")]),
    ("cd /w; ls | xargs rm", [s("cd", "/w", paths=("cd:/w",)), s("ls", cwd="/w"), s("xargs", "rm", cwd="/w"),
                             s("rm", cwd="/w", dynamic_args=True)]),
    ("git clone x && cd x && npm install",
     [s("git", "clone", "x", network=True), s("cd", "x", paths=("cd:x",)), s("npm", "install", cwd="x", install=True)]),
]


@pytest.mark.parametrize(("command", "expected"), CWD)
def test_cd_changes_where_later_commands_run(command: str, expected: list[S]) -> None:
    result = analyze(command)
    _no_error(command, result)
    _assert(result, expected)


# --- installs ------------------------------------------------------------------------------

INSTALLS = [
    "npm install", "npm i -g typescript", "npm ci", "npm add lodash", "npm --prefix web install",
    "npm init vite", "npm audit fix", "npm update",
    "pnpm add x", "pnpm install", "pnpm dlx create-vite", "yarn", "yarn --frozen-lockfile", "yarn add x",
    "yarn dlx x", "yarn global add x", "bun install", "bun add x", "bunx cowsay", "npx prettier --write .",
    "uvx ruff", "pipx run black", "pipx install black",
    "pip install requests", "pip3 install -r requirements.txt", "pip3.11 install x",
    "python -m pip install x", "python3 -m pip install --user x", "/usr/bin/python3.12 -m pip install x",
    "python -m ensurepip",
    "uv pip install x", "uv add x", "uv sync", "uv tool install ruff", "uv python install 3.12",
    "poetry add x", "poetry install", "pdm add x", "pipenv install x",
    "conda install numpy", "conda create -n x python", "conda env create -f env.yml", "mamba install x",
    "cargo add serde", "cargo install ripgrep", "cargo +nightly install x",
    "go get x", "go install x@latest", "gem install rails", "bundle install", "bundle add x",
    "composer require x", "composer install",
    "apt install curl", "apt-get install -y curl", "apt-get -o Foo=1 install x", "aptitude install x",
    "dnf install x", "yum install x", "zypper in x", "pacman -S x", "pacman -Syu", "yay -S x", "apk add x",
    "brew install x", "port install x", "snap install x", "flatpak install x", "nix-env -iA nixpkgs.hello",
    "nix profile install nixpkgs#hello", "nix-shell -p hello", "dpkg -i x.deb",
    "dotnet add package Newtonsoft.Json", "dotnet add app.csproj package X", "dotnet tool install x",
    "deno install x", "deno add x", "luarocks install x", "opam install x", "cpanm X", "cpan X",
    "R -e 'install.packages(\"x\")'", "rustup target add wasm32", "pyenv install 3.12",
]


@pytest.mark.parametrize("command", INSTALLS)
def test_installs(command: str) -> None:
    result = analyze(command)
    assert result.error is None
    assert [(seg.install, seg.network) for seg in result.segments] == [(True, False)]


NOT_INSTALLS = [
    "npm run build", "npm test", "npm start", "npm uninstall x", "npm ls", "npm init", "npm run install",
    "pnpm run dev", "yarn run build", "yarn test", "yarn remove x", "bun run x", "npx --version",
    "pip list", "pip freeze", "pip show x", "pip uninstall x", "python3.12 -m pip list",
    "python -m venv .venv", "python script.py", "python -m pytest",
    "uv venv", "pipx list", "poetry build", "conda list", "conda remove x",
    "cargo build", "cargo test", "cargo run", "go build ./...", "go test ./...", "gem list",
    "apt remove x", "apt list --installed", "pacman -Ss x", "pacman -Q", "brew list", "brew uninstall x",
    "nix-env -q", "dotnet build", "mvn install", "mvn package", "gradle build", "deno run x.ts",
    "dpkg -l", "Rscript -e 'print(1)'",
]


@pytest.mark.parametrize("command", NOT_INSTALLS)
def test_not_installs(command: str) -> None:
    result = analyze(command)
    assert result.error is None
    assert [(seg.install, seg.network) for seg in result.segments] == [(False, False)]


# --- network -------------------------------------------------------------------------------

NETWORK = [
    "curl -s https://example.com", "wget x", "ssh host ls", "scp a host:b", "sftp host",
    "rsync -av src/ host:/dst", "rsync -av user@host:/src ./dst", "rsync rsync://h/m ./d",
    "nc -l 8080", "ncat h 1", "netcat h 1", "socat - TCP:h:1", "telnet h", "ftp h",
    "git push", "git pull --rebase", "git fetch origin", "git clone https://x/y", "git ls-remote origin",
    "git submodule update --init", "git -C sub push", "git remote show origin",
    "gh pr list", "http GET x", "https x", "xh x", "ping -c1 x", "dig x", "nslookup x", "host x",
    "aws s3 ls", "gcloud auth list", "az login", "kubectl get pods", "helm install x",
    "docker pull x", "docker push x", "docker login", "docker -H h pull x", "podman pull x",
    "npm publish", "npm view react", "yarn publish", "twine upload dist/x.whl", "cargo publish",
    "cargo update", "uv lock", "poetry lock", "pip download x", "go mod download", "apt-get update",
    "dotnet restore", "mvn dependency:resolve", "mvn deploy", "gradle publish",
    "openssl s_client -connect x:443", "terraform plan",
]


@pytest.mark.parametrize("command", NETWORK)
def test_network(command: str) -> None:
    result = analyze(command)
    assert result.error is None
    assert [(seg.install, seg.network) for seg in result.segments] == [(False, True)]


NOT_NETWORK = [
    "git status", "git commit -m x", "git log", "git diff", "git remote -v", "git add .",
    "rsync -av src/ dst/", "docker build .", "docker run x", "openssl rand 10", "terraform fmt",
    "python -m http.server", "npm run dev", "ls", "echo https://example.com",
]


@pytest.mark.parametrize("command", NOT_NETWORK)
def test_not_network(command: str) -> None:
    result = analyze(command)
    assert result.error is None
    assert [(seg.install, seg.network) for seg in result.segments] == [(False, False)]


# --- errors --------------------------------------------------------------------------------

ERRORS: list[tuple[str, str, list[tuple[str, ...]]]] = [
    ("", "empty command", []),
    ("   \n\t", "empty command", []),
    ("echo 'unterminated", "syntax error", [("echo",)]),
    ('ls; rm x "', "syntax error", [("ls",), ("rm", "x")]),
    ("if true; then echo", "syntax error", [("true",)]),
    ("(ls", "syntax error", [("ls",)]),
    ("ls &&", "syntax error", [("ls",)]),
    ("{rm,-rf,/}", "syntax error", []),
    ("x=1 > /tmp/f", "syntax error", [()]),
    ("$CMD args", "cannot tell which command runs: $CMD", [("$CMD", "args")]),
    ("$(echo rm) -rf x", "cannot tell which command runs", [("echo", "rm"), ("$(echo rm)", "-rf", "x")]),
    ("sudo $CMD", "cannot tell which command runs", [("$CMD",)]),
    ("/bin/r? x", "cannot tell which command runs", [("/bin/r?", "x")]),
    ("rm$IFS-rf$IFS/", "cannot tell which command runs", [("rm$IFS-rf$", "IFS/")]),
    ("popd +1 && $EDITOR f", "cannot tell which command runs", [("popd", "+1"), ("$EDITOR", "f")]),
    ("eval $X", "eval: command string is not static", [("eval", "$X")]),
    ('bash -c "$SCRIPT"', "bash: command string is not static", [("bash", "-c", "$SCRIPT")]),
    ("sh -c \"rm $F\"", "sh: command string is not static", [("sh", "-c", "rm $F")]),
    ("bash -c 'ls; (rm'", "bash: syntax error", [("bash", "-c", "ls; (rm"), ("ls",), ("rm",)]),
    ("curl x | sh", "sh reads commands from stdin", [("curl", "x"), ("sh",)]),
    ("bash", "bash reads commands from stdin", [("bash",)]),
    ("ls | xargs -I{} sh -c 'rm {}'", "sh: command string is not static",
     [("ls",), ("xargs", "-I{}", "sh", "-c", "rm {}"), ("sh", "-c", "rm {}")]),
    ("cat <<EOF\n$(rm x\nEOF", "syntax error", [("cat",), ("rm", "x"), ("EOF",)]),
    ("cat <<EOF\n  `rm x\nEOF", "heredoc: unterminated backquote", [("cat",)]),
    ("cat <<EOF\n  $(rm x\nEOF", "heredoc: unterminated command substitution", [("cat",)]),
    ("cat <<EOF\n`rm x; (`\nEOF", "heredoc: syntax error", [("rm", "x"), ("cat",)]),
]


@pytest.mark.parametrize(("command", "message", "argvs"), ERRORS)
def test_errors_keep_what_was_found(command: str, message: str, argvs: list[tuple[str, ...]]) -> None:
    result = analyze(command)
    assert result.error is not None and message in result.error
    assert [seg.argv for seg in result.segments] == argvs


def test_nesting_is_bounded() -> None:
    command = "rm x"
    for _ in range(9):  # 88,646 characters: under the size cap, over the nesting cap
        command = "bash -c " + "'" + command.replace("'", "'\\''") + "'"
    result = analyze(command)
    assert result.error is not None and "nested too deeply" in result.error
    assert result.segments[0].argv[:2] == ("bash", "-c")


def test_size_and_segment_count_are_bounded() -> None:
    from jobgov.policy.shell import MAX_COMMAND_CHARS, MAX_SEGMENTS

    huge = analyze("echo " + "a" * MAX_COMMAND_CHARS)
    assert huge.error is not None and "too complex to judge" in huge.error and not huge.segments
    chain = analyze("; ".join(["cd a"] * (MAX_SEGMENTS + 50)))
    assert chain.error is not None and f"more than {MAX_SEGMENTS} commands" in chain.error
    assert len(chain.segments) == MAX_SEGMENTS


def test_dynamic_arguments_are_flagged() -> None:
    (segment,) = analyze('rm -rf "$TARGET"').segments
    assert segment.argv == ("rm", "-rf", "$TARGET")
    assert segment.dynamic_args is True
    assert segment.paths == ()


def test_long_chains_do_not_exhaust_the_stack() -> None:
    result = analyze("true && " * 250 + "cd sub; rm x > out")
    assert result.error is None
    assert len(result.segments) == 252
    last = result.segments[-1]
    assert (last.argv, last.cwd, last.paths) == (("rm", "x"), "sub", (PathRef("out", "redirect-write"),))
    # Longer chains are walked without recursion too, and fail closed past the segment cap.
    longer = analyze("true && " * 3000 + "cd sub; rm x > out")
    assert longer.error is not None and "too complex to judge" in longer.error


def test_absurd_nesting_is_an_error_not_an_exception() -> None:
    result = analyze("echo " + "$(" * 400 + "id" + ")" * 400)
    assert result.error == "command is nested too deeply to analyse"
