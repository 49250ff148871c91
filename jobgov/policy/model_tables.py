"""The modelled commands: what coding agents run, and what each of their words is.

A command that is not here is unknown (ask-user unless a plan trusts it). Options not
listed for a command are read as flags; an unlisted option with an inline value that
looks like a path (``--output=../x``) is read as a write there. Options that run code,
and subcommands, are listed exhaustively where they exist (git's global options are
strict: an unknown one is unknown).

Borderline choices, documented once, here:

* Test runners, builds, package-manager scripts, linters whose configuration is code
  (eslint, prettier, webpack ...), interpreters running a file, ``make``, and git
  commands that run hooks run the project's own code: ``project_code`` decides them.
* ``git config`` that sets a key is unknown (a key can make git run commands: pager,
  editor, aliases, hooks path, filters ...) unless the key is in :data:`GIT_SAFE_KEYS`.
* ``tar`` extraction writes inside its ``-C`` directory (members with ``..`` are
  refused by GNU tar); ``-P`` (keep absolute names) is unknown.
* ``patch`` writes whatever files its input names: unknown. ``git apply`` refuses paths
  outside the repository and is modelled.
"""

from __future__ import annotations

import posixpath
import re

from jobgov.policy.model import (
    Context,
    Spec,
    data,
    first_is,
    key_values,
    last_is,
    spec,
    unknown_use,
)
from jobgov.policy.model_git import GIT
from jobgov.policy.model_programs import PROGRAMS
from jobgov.policy.programs import awk_problem, scan_sed
from jobgov.policy.shellwords import Word

# --- handlers ---------------------------------------------------------------------------------


def _sed(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    scripts = [w for opt in ("-e", "--expression") for w in seen.get(opt, [])]
    files = ops
    if not scripts and not any(opt in seen for opt in ("-f", "--file")):
        if not ops:
            ctx.unknown("sed without a script")
            return
        scripts, files = [ops[0]], ops[1:]
    in_place = any(opt in seen for opt in ("-i", "--in-place"))
    for script in scripts:
        if script.dynamic:
            ctx.unknown(f"sed script is not static: {script.text}")
            continue
        facts = scan_sed(script.text)
        if facts.problem:
            ctx.unknown(f"sed script cannot be read: {facts.problem}")
        if facts.runs:
            ctx.unknown("sed script runs commands (e)")
        for name in facts.reads:
            ctx.path(Word(name), "read")
        for name in facts.writes:
            ctx.path(Word(name), "write")
    for word in files:
        ctx.path(word, "write" if in_place else "read")


def _awk(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    files = ops
    if not any(opt in seen for opt in ("-f", "--file")):
        if not ops:
            ctx.unknown("awk without a program")
            return
        program, files = ops[0], ops[1:]
        if program.dynamic:
            ctx.unknown(f"awk program is not static: {program.text}")
        elif (problem := awk_problem(program.text)) is not None:
            ctx.unknown(problem)
    for word in files:
        if "=" in word.text and not word.text.startswith(("/", ".")):
            continue  # var=value assignments between files
        ctx.path(word, "read")


#: find predicates and actions, by what their argument is (``None``: no argument).
_FIND_ARGS: dict[str, str | None] = {
    **dict.fromkeys("-name -iname -path -ipath -wholename -iwholename -regex -iregex -type -xtype -size -perm "
                    "-user -group -uid -gid -mtime -mmin -atime -amin -ctime -cmin -maxdepth -mindepth "
                    "-links -inum -fstype -printf -used -context -regextype".split(), "data"),
    **dict.fromkeys("-newer -anewer -cnewer -samefile".split(), "read"),
    **dict.fromkeys("-fprint -fprint0 -fls".split(), "write"),
    **dict.fromkeys("-print -print0 -ls -prune -quit -true -false -empty -readable -writable -executable "
                    "-nouser -nogroup -depth -mount -xdev -noleaf -follow -daystart -not -and -or -a -o "
                    "-ignore_readdir_race -noignore_readdir_race -help -version -d".split(), None),
}
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _find(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    # The options were consumed by the generic reader only up to the first operand (posix).
    words = ops
    if any(w.text == "-follow" for w in words):
        ctx.follow = True  # like -L: every path below the roots is reached through symlinks
    k = 0
    roots: list[Word] = []
    while k < len(words) and not (words[k].text.startswith("-") or words[k].text in ("(", ")", "!", ",")):
        roots.append(words[k])
        k += 1
    for root in roots or [Word(".")]:
        ctx.path(root, "read")
    deletes = False
    while k < len(words):
        text = words[k].text
        if text in ("(", ")", "!", ","):
            k += 1
            continue
        if text in _FIND_EXEC:
            end = next((m for m in range(k + 1, len(words)) if words[m].text in (";", "+")), len(words))
            k = end + 1  # the payload is judged as a segment of its own
            continue
        if text == "-delete":
            deletes = True
            k += 1
            continue
        if text == "-fprintf":
            if k + 1 < len(words):
                ctx.path(words[k + 1], "write")
            k += 3
            continue
        if text not in _FIND_ARGS:
            ctx.unknown(f"unknown find expression {text}")
            return
        role = _FIND_ARGS[text]
        if role is not None and k + 1 < len(words):
            if role != "data":
                ctx.path(words[k + 1], role)  # type: ignore[arg-type]
            k += 2
        else:
            k += 1
    if deletes:
        for root in roots or [Word(".")]:
            ctx.path(root, "delete")


def _tar(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    modes = _tar_modes(ctx)
    if "-P" in seen or "--absolute-names" in seen:
        ctx.unknown("tar -P keeps absolute member names")
    archives = [w for opt in ("-f", "--file") for w in seen.get(opt, [])]
    creating = bool(modes & set("cru"))
    for archive in archives:
        host, colon, _ = archive.text.partition(":")
        if colon and "/" not in host and "--force-local" not in seen:
            ctx.unknown(f"tar reaches the remote archive {archive.text} (over rsh)")
        elif archive.text != "-":
            ctx.path(archive, "write" if creating else "read")
    if "x" in modes and ("--transform" in seen or "--xform" in seen):
        ctx.unknown("tar --transform renames members, so extraction may write anywhere")
    if "x" in modes:
        ctx.path(Word(".") if ctx.base is None else Word(ctx.base), "write")
    for word in ops:
        ctx.path(word, "read" if creating else "data")


def _tar_modes(ctx: Context) -> set[str]:
    """tar's mode letters, from bundled (``tar xzf``) or dashed options."""
    modes: set[str] = set()
    for k, word in enumerate(ctx.words[1:]):
        text = word.text
        if k == 0 and not text.startswith("-"):
            modes |= set(text) & set("ctxrudA")
        elif text.startswith("-") and not text.startswith("--"):
            modes |= set(text[1:]) & set("ctxrudA")
        elif text in ("--extract", "--get"):
            modes.add("x")
        elif text in ("--create",):
            modes.add("c")
        elif text in ("--append", "--update"):
            modes.add("r")
    return modes


def _chmod_like(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``chmod MODE FILE...`` (``--reference=F`` replaces the mode)."""
    skip = 0 if "--reference" in seen else 1
    for k, word in enumerate(ops):
        if k >= skip:
            ctx.path(word, "write")


def _ln(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``ln [-s] TARGET... LINK``: the link is written, and what it points to is read.

    A symlink's target is resolved from the link's own directory (``ln -s ../x d/l`` points to
    ``x`` beside ``d``): a link inside that points outside opens the outside to later commands.
    """
    symbolic = "-s" in seen or "--symbolic" in seen
    targeted = "-t" in seen or "--target-directory" in seen
    link = ops[-1] if len(ops) > 1 and not targeted else None
    for word in ops if link is None else ops[:-1]:
        if symbolic and link is not None and not word.text.startswith(("/", "~")) and not word.dynamic:
            folder = posixpath.dirname(link.text)
            word = Word(posixpath.join(folder, word.text) if folder else word.text, word.dynamic, word.glob)
        ctx.path(word, "read")
    if link is not None:
        ctx.path(link, "write")


def _zip(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``zip ARCHIVE FILE...``; ``-TT CMD`` (two letters) runs a command to test the archive."""
    if any(w.text == "-TT" or w.text.startswith("--unzip-command") for w in ctx.words):
        ctx.unknown("zip -TT runs code jobgov cannot judge")
    for k, word in enumerate(ops):
        ctx.path(word, "write" if k == 0 else "read")


def _uniq(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    for k, word in enumerate(ops):
        ctx.path(word, "write" if k == 1 else "read")


def _mktemp(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``mktemp`` creates a file or directory in $TMPDIR (outside) unless given ``-p DIR``/a path template."""
    where = seen.get("-p") or seen.get("--tmpdir") or []
    if where:
        return  # the directory was judged as a write through its option
    if ops and "/" in ops[0].text and "-t" not in seen:
        ctx.path(ops[0], "write")
    else:
        ctx.path(Word("/tmp"), "write")


def _set(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``set -euo pipefail``: only options that change no command's meaning."""
    for opt, values in seen.items():
        if opt in ("-o", "+o"):
            for value in values:
                if value.text not in SAFE_SET_OPTIONS:
                    ctx.unknown(f"set -o {value.text} changes how later commands are read")
        elif opt.lstrip("-+") not in SAFE_SET_FLAGS:
            ctx.unknown(f"set {opt} changes how later commands are read")


SAFE_SET_OPTIONS = frozenset({"pipefail", "errexit", "nounset", "xtrace", "verbose", "noclobber", "errtrace",
                              "functrace"})
SAFE_SET_FLAGS = frozenset({"e", "u", "x", "v", "C", "E", "T"})


def _shopt(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``shopt -s nullglob``: only options that change globbing jobgov understands."""
    if not ({"-s", "-u"} & set(seen)):
        return  # shopt with -p/-q or no flag only prints
    for word in ops:
        if word.dynamic or word.text not in SAFE_SHOPT:
            ctx.unknown(f"shopt {word.text} changes how later commands are read")


SAFE_SHOPT = frozenset({"nullglob", "failglob", "extglob", "globstar", "dotglob", "nocaseglob", "nocasematch",
                        "pipefail", "lastpipe"})


def _names_plain(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``read NAME`` / ``printf -v NAME``: a subscripted name evaluates its subscript (``a[$(cmd)]``)."""
    for word in [*ops, *seen.get("-v", []), *seen.get("-a", [])]:
        if "[" in word.text:
            ctx.unknown(f"assigns {word.text}, whose subscript bash evaluates")


def _printf(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``printf -v NAME``: a subscripted NAME evaluates its subscript; the format and arguments are data."""
    _names_plain(ctx, [], seen)


def _hash(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``hash`` prints or forgets; ``hash -p FILE NAME`` makes NAME run FILE."""
    if "-p" in seen:
        ctx.unknown("hash -p makes a command name run another program")


def _test(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``test``/``[``: ``-v NAME[SUB]`` and arithmetic comparisons evaluate subscripts in their operands."""
    words = [w.text for w in ctx.words[1:]]
    for k, text in enumerate(words):
        if text in ("-v", "-eq", "-ne", "-lt", "-le", "-gt", "-ge") and any(
                "[" in other or "$" in other for other in words[max(0, k - 1):k + 2] if other != text):
            ctx.unknown(f"test {text} evaluates its operands as arithmetic or names, which can run commands")
            return


def _date(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    if "-s" in seen or "--set" in seen or any(not w.text.startswith("+") for w in ops):
        ctx.unknown("date sets the system clock")


def _unzip(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``unzip ARCHIVE [MEMBER...]`` extracts into ``-d DIR`` or here; ``-:`` keeps ``../`` in member names."""
    if "-:" in seen or any(w.text.startswith("-") and ":" in w.text for w in ctx.words[1:]):
        ctx.unknown("unzip -: extracts members with ../ in their names")
    for k, word in enumerate(ops):
        ctx.path(word, "read" if k == 0 else "data")
    if not seen.get("-d") and not any(opt in seen for opt in ("-l", "-t", "-v", "-p", "-Z")):
        ctx.path(Word("."), "write")


def _setuid(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """chmod: a mode that sets the setuid/setgid bit makes a program that runs with someone else's rights."""
    if ops and re.search(r"(^[0-7]?[2-7][0-7]{3}$)|[ug]*[+=][a-z]*s", ops[0].text) and "--reference" not in seen:
        ctx.unknown(f"chmod {ops[0].text} sets the setuid or setgid bit")
    _chmod_like(ctx, ops, seen)


# --- the tables ---------------------------------------------------------------------------------

_VIEW = spec("read", values="-n:data -c:data --lines:data --bytes:data -s:data --sleep-interval:data "
                             "--pid:data")
_DATA = spec("data")
_COMPRESS = spec("read", values="-S --suffix", effects={"-c": "read", "--stdout": "read"})


MODEL: dict[str, Spec] = {
    # Viewing and searching files.
    # Options with an optional value (``--color[=WHEN]``) are not listed: only their ``=`` form takes one.
    **dict.fromkeys("cat tac md5sum sha1sum sha256sum sha512sum cksum b2sum shasum lsattr rev readlink".split(),
                    spec("read")),
    "nl": spec("read", values="-b:data -d:data -f:data -h:data -i:data -l:data -n:data -s:data -v:data -w:data"),
    "wc": spec("read", values="--files0-from:read"),
    "file": spec("read", values="-m:read --magic-file:read -f:read --files-from:read -F:data --separator:data "
                                "-e:data --exclude:data -P:data --parameter:data"),
    "stat": spec("read", values="-c:data --format:data --printf:data"),
    "strings": spec("read", values="-n:data -t:data -e:data --bytes:data --radix:data --encoding:data"),
    **dict.fromkeys("xxd od hexdump hd".split(),
                    spec("read", values="-s:data -l:data -c:data -g:data -n:data -j:data -N:data -t:data "
                                        "-A:data -w:data -o:data -e:data -f:read")),
    **dict.fromkeys("base64 base32".split(), spec("read", values="-w:data --wrap:data")),
    "realpath": spec("read", values="--relative-to:read --relative-base:read"),
    **dict.fromkeys("ls dir vdir".split(),
                    spec("read", values="-w:data --width:data -I:data --ignore:data --hide:data "
                                        "--block-size:data --time-style:data --format:data --sort:data "
                                        "--quoting-style:data --indicator-style:data -T:data --tabsize:data",
                         effects={"-L": "follow", "--dereference": "follow"})),
    "du": spec("read", values="-B:data --block-size:data -d:data --max-depth:data -t:data --threshold:data "
                              "--exclude:data -X:read --exclude-from:read --time-style:data --files0-from:read",
               effects={"-L": "follow", "--dereference": "follow"}),
    "tree": spec("read", values="-L:data -P:data -I:data --filelimit:data -o:write --charset:data "
                                "--sort:data --timefmt:data",
                 effects={"-l": "follow"}),
    "bat": spec("read", values="-l:data --language:data -r:data --line-range:data --theme:data --style:data "
                               "-H:data --highlight-line:data --tabs:data --wrap:data --terminal-width:data "
                               "-m:data --map-syntax:data --file-name:data",
                effects={"--pager": "code"}),
    "batcat": spec("read", values="-l:data --language:data -r:data --line-range:data --style:data",
                   effects={"--pager": "code"}),
    **dict.fromkeys("fold fmt".split(), spec("read", values="-w:data --width:data -p:data --prefix:data")),
    **dict.fromkeys("expand unexpand".split(), spec("read", values="-t:data --tabs:data")),
    "column": spec("read", values="-s:data -c:data -o:data -N:data -R:data -l:data --separator:data "
                                  "--output-separator:data --table-columns:data --table-right:data"),
    **dict.fromkeys("head tail".split(), _VIEW),
    "sort": spec("read", values=data("-o:write --output:write -k --key -t --field-separator -T:write "
                                   "--temporary-directory:write -S --buffer-size --parallel --files0-from:read "
                                   "--compress-program:code"),
                 effects={"--compress-program": "code"}),
    "uniq": spec(_uniq, values=data("-f -s -w --skip-fields --skip-chars --check-chars")),
    "cut": spec("read", values=data("-d -f -c -b --delimiter --fields --characters --bytes --output-delimiter")),
    "paste": spec("read", values=data("-d --delimiters")),
    "join": spec("read", values=data("-t -1 -2 -j -o -e -a -v")),
    "comm": spec("read", values=data("--output-delimiter")),
    "diff": spec("read", values=data("-U -C --unified --context -x --exclude -X:read --exclude-from:read --label "
                                   "-I --ignore-matching-lines --line-format -W --width --to-file:read "
                                   "--from-file:read")),
    "cmp": spec("read", values=data("-i --ignore-initial -n --bytes")),
    "tr": spec("data"),
    **dict.fromkeys("grep egrep fgrep".split(),
                    spec(first_is("data", "read", ("-e", "--regexp", "-f", "--file")),
                         values=data("-e --regexp -f:read --file:read -m --max-count -A -B -C --context "
                                   "--after-context --before-context --include --exclude --exclude-dir "
                                   "--exclude-from:read -d --directories -D --devices --label --binary-files"),
                         effects={"-R": "follow", "--dereference-recursive": "follow"})),
    "rg": spec(first_is("data", "read", ("-e", "--regexp", "-f", "--file", "--files", "--type-list")),
               values=data("-e --regexp -f:read --file:read -g --glob --iglob -t --type -T --type-not -m "
                         "--max-count -A -B -C --context --max-depth --max-filesize --colors -j "
                         "--threads --sort --sortr --type-add --ignore-file:read -M --max-columns -E "
                         "--encoding -r --replace --path-separator --field-match-separator "
                         "--field-context-separator --context-separator --pre:code --pre-glob "
                         "--hostname-bin:code"),
               effects={"--pre": "code", "-L": "follow", "--follow": "follow", "--hostname-bin": "code"}),
    "ag": spec(first_is("data", "read"), values=data("-G --file-search-regex --ignore --ignore-dir -A -B -C -m "
                                                   "--depth --pager:code"),
               effects={"-f": "follow", "--follow": "follow", "--pager": "code"}),
    "ack": spec(first_is("data", "read"), values=data("--type --ignore-dir -A -B -C -m --match"),
                effects={"--follow": "follow"}),
    **dict.fromkeys("fd fdfind".split(),
                    spec(first_is("data", "read"), values=data("-e --extension -t --type -E --exclude -d --max-depth "
                                                             "--min-depth -S --size --changed-within "
                                                             "--changed-before -j"),
                         effects={"-x": "code", "--exec": "code", "-X": "code", "--exec-batch": "code",
                                  "-L": "follow", "--follow": "follow"})),
    "find": spec(_find, posix=True, values=data("-D -O"), effects={"-L": "follow"}),
    "jq": spec(first_is("data", "read", ("-f", "--from-file", "-n", "--null-input")),
               values=data("--indent -f:read --from-file:read -L:read"),
               effects={"--arg": "data"}),
    "yq": spec(first_is("data", "read"), values=data("-o --output-format -p --input-format"),
               effects={"-i": "write", "--inplace": "write"}),
    "sed": spec(_sed, values="-e --expression -f:program --file:program -l:data --line-length:data"),
    **dict.fromkeys("awk gawk mawk nawk".split(),
                    spec(_awk, posix=True, values="-F:data --field-separator:data -v:data --assign:data "
                                                  "-f:program --file:program "
                                                  "-i:program --include:program -e:code --source:code "
                                                  "-l:code --load:code -E:program --exec:program")),
    # Plain data.
    **dict.fromkeys("test [".split(), spec(_test)),
    "date": spec(_date, values="-f:read --file:read -r:read --reference:read -d:data --date:data -I:data "
                               "--iso-8601:data -s:data --set:data"),
    **dict.fromkeys("echo true false : pwd whoami id groups uname hostname cal sleep seq yes "
                    "basename dirname expr [[ nproc tty locale printenv type which whereis "
                    "help getconf logname users uptime free env ps lsof ss netstat history clear tput "
                    "cd pushd popd dirs".split(), _DATA),
    **dict.fromkeys("export declare typeset local readonly unset wait jobs shift exit return break continue "
                    "umask ulimit".split(), _DATA),
    "set": spec(_set, values="-o:data +o:data"),
    "shopt": spec(_shopt),
    "read": spec(_names_plain, values=data("-a -d -n -N -p -t -u -i")),
    "printf": spec(_printf, values="-v:data"),
    "hash": spec(_hash, values="-p:data -t:data"),
    "xargs": spec("command", posix=True, values="-a:read --arg-file:read -d --delimiter -E --eof -I -L "
                                                "--max-lines -n --max-args -P --max-procs -s --max-chars "
                                                "--process-slot-var"),
    # Changing files.
    **dict.fromkeys("rm rmdir unlink shred".split(), spec("delete", values="--interactive")),
    **dict.fromkeys("mkdir touch truncate".split(),
                    spec("write", values="-m --mode -s --size -r:read --reference:read -d --date -t")),
    "tee": spec("write"),
    "cp": spec(last_is("write"), values="-t:write --target-directory:write -S --suffix --backup --sparse "
                                         "--preserve --no-preserve --reflink"),
    "mv": spec(last_is("write", "delete"), values="-t:write --target-directory:write -S --suffix --backup"),
    "install": spec(last_is("write"), values="-t:write --target-directory:write -m --mode -o --owner -g "
                                              "--group -S --suffix"),
    "ln": spec(_ln, values="-t:write --target-directory:write -S --suffix --backup"),
    "chmod": spec(_setuid, values="--reference:read"),
    **dict.fromkeys("chown chgrp".split(), spec(_chmod_like, values="--reference:read --from:data")),
    "dd": spec(key_values({"if": "read", "of": "write"})),
    "mktemp": spec(_mktemp, values="-p:write --tmpdir:write --suffix"),
    "patch": spec(unknown_use("patch writes whatever files its input names"), values="-p -d:cwd -i:read "
                                                                                       "-o:write -r:write -B"),
    # Archives.
    "tar": spec(_tar, values="-f:data --file:data -C:cwd --directory:cwd -T:read --files-from:read "
                             "-X:read --exclude-from:read --exclude --transform --strip-components "
                             "--owner --group --mode --mtime --format -b --blocking-factor",
                effects={"--to-command": "code", "--checkpoint-action": "code", "-I": "code",
                         "--use-compress-program": "code", "--rmt-command": "code", "--rsh-command": "code",
                         "--info-script": "code", "--new-volume-script": "code", "-F": "code"}),
    "zip": spec(_zip, values="-x -i -b:write -n -t -tt -O:write --out:write -P --password --unzip-command"),
    "unzip": spec(_unzip, values="-d:write -x:data -P:data"),
    **dict.fromkeys("gzip gunzip bzip2 bunzip2 xz unxz zstd unzstd lz4 zcat bzcat xzcat zless zgrep".split(),
                    _COMPRESS),
    # Programs (interpreters, builds, package managers) and git.
    **PROGRAMS,
    # Version control.
    "git": GIT,
    "gh": spec("data", subcommands={
        **dict.fromkeys("pr issue repo run release workflow api search gist browse label status auth".split(),
                        spec("data")),
    }),
}
