"""git in the command model: its strict global options, and what each subcommand does with its words.

``git -c``/``--config-env``, ``git config`` of keys that run commands, aliases (unknown
subcommands), ``submodule foreach``, ``rebase -x``, ``bisect run`` and ``filter-branch`` run
code jobgov cannot see; commands that run hooks (commit, merge, checkout ...) run the
project's own code.
"""

from __future__ import annotations

import posixpath

from jobgov.policy.model import (
    Context,
    Spec,
    data,
    spec,
    unknown_use,
)
from jobgov.policy.shellwords import Word


def _git_config(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    reading = any(opt in seen for opt in ("--get", "--get-all", "--get-regexp", "-l", "--list", "--show-origin",
                                          "--name-only", "--get-urlmatch"))
    if reading or len(ops) == 1 or (ops and ops[0].text in ("get", "list")):
        return
    key = ops[1].text if ops and ops[0].text in ("set", "unset") and len(ops) > 1 else ops[0].text if ops else ""
    if key.lower() not in GIT_SAFE_KEYS:
        ctx.unknown(f"git config sets {key or 'a key'}, which can make git run commands")
    if "--global" in seen or "--system" in seen:
        ctx.path(Word("~/.gitconfig"), "write")


#: Keys ``git config`` may set without asking: none of them makes git run anything.
GIT_SAFE_KEYS = frozenset({
    "user.name", "user.email", "init.defaultbranch", "commit.gpgsign", "tag.gpgsign", "pull.rebase",
    "pull.ff", "merge.ff", "core.autocrlf", "core.filemode", "core.ignorecase", "color.ui", "advice.detachedhead",
    "push.default", "push.autosetupremote", "rebase.autostash", "fetch.prune", "diff.renames", "log.date",
    "safe.directory",
})


def _git_clone(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``git clone URL [DIR]``: the directory is written (by default one named after the URL, here)."""
    if len(ops) > 1:
        ctx.path(ops[1], "write")
    elif ops and not ops[0].dynamic:
        name = posixpath.basename(ops[0].text.rstrip("/").rpartition(":")[2]).removesuffix(".git")
        ctx.path(Word(name or "repository"), "write")


def _git_worktree(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``git worktree add PATH`` / ``move FROM TO`` / ``remove PATH`` write where they point."""
    sub = ops[0].text if ops else "list"
    if sub in ("add", "move", "remove", "repair", "lock", "unlock"):
        for word in ops[1:2] if sub == "add" else ops[1:]:
            ctx.path(word, "delete" if sub == "remove" else "write")
    elif sub not in ("list", "prune"):
        ctx.unknown(f"unknown subcommand git worktree {sub}")


def _git_apply(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    """``git apply PATCH``: git refuses paths outside the repository, unless told ``--unsafe-paths``."""
    if "--unsafe-paths" in seen:
        ctx.unknown("git apply --unsafe-paths writes wherever the patch says")
    for word in ops:
        ctx.path(word, "read")


def _git_submodule(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    sub = ops[0].text if ops else "status"
    if sub == "foreach":
        ctx.unknown("git submodule foreach runs commands")
    elif sub not in ("status", "summary", "init", "sync", "deinit", "absorbgitdirs", "set-branch", "set-url"):
        # update can run a configured `!command`; add and update fetch.
        ctx.unknown(f"git submodule {sub} fetches and may run configured commands")


def _git_bisect(ctx: Context, ops: list[Word], seen: dict[str, list[Word]]) -> None:
    if ops and ops[0].text == "run":
        ctx.unknown("git bisect run runs commands")


#: git's global options (strict: anything else before the subcommand is unknown).
_GIT_GLOBAL_VALUES = ("-C:cwd --git-dir:read --work-tree:cwd --namespace --exec-path:code --super-prefix "
                      "-c --config-env")


_GIT_HOOKS = "project"


_GIT_SUB: dict[str, Spec] = {
    **dict.fromkeys(
        "status log show diff blame shortlog describe rev-parse rev-list ls-files ls-tree cat-file show-ref "
        "for-each-ref reflog whatchanged name-rev merge-base range-diff cherry count-objects fsck "
        "check-ignore check-attr verify-commit verify-tag grep var help version show-branch".split(),
        # Options whose value is optional (-M, -C, --abbrev, --relative ...) take it only attached.
        spec("data", values=data("-n --max-count -S -G --author --since --until --after --before --format "
                               "--date --grep -L --line-range --stat-width --diff-filter -e --skip --committer "
                               "--encoding --output:write -O:code --ext-diff:code"),
             effects={"--ext-diff": "code", "--textconv": "code", "--open-files-in-pager": "code", "-O": "code",
                      "--no-index": "read"})),
    # add stages files (it writes only the index); the others change files in the worktree.
    "add": spec("read", values=data("--pathspec-from-file:read --chmod")),
    **dict.fromkeys("rm mv restore reset clean checkout-index update-index".split(),
                    spec("write", values=data("--pathspec-from-file:read -s --source --conflict"))),
    **dict.fromkeys("commit merge rebase cherry-pick revert am pull checkout switch".split(),
                    spec("data", values=data("-m --message -F:read --file:read -C -c --reuse-message --author --date "
                                           "--strategy -X --strategy-option --onto --cleanup -b -B --orphan "
                                           "--template:read --fixup --squash -x:code --exec:code"),
                         effects={"-x": "code", "--exec": "code"},
                         does=_GIT_HOOKS)),
    **dict.fromkeys("push fetch ls-remote remote branch tag stash notes gc prune repack pack-refs archive "
                    "format-patch sparse-checkout replace".split(),
                    spec("data", values=data("-m --message -o:write --output:write --output-directory:write "
                                           "-F:read --file:read --prefix --format --depth --branch -b "
                                           "--upload-pack:code --receive-pack:code --exec:code --remote"),
                         effects={"--upload-pack": "code", "--receive-pack": "code", "--exec": "code"})),
    "clone": spec(_git_clone, values=data("--depth --branch -b --origin -o --template:read --reference:read "
                                        "--separate-git-dir:write -u:code --upload-pack:code -c --config"),
                  effects={"-u": "code", "--upload-pack": "code", "-c": "code", "--config": "code"}),
    "init": spec("write", values=data("--template:read --separate-git-dir:write -b --initial-branch "
                                    "--object-format")),
    "worktree": spec(_git_worktree, values=data("-b -B --reason")),
    "apply": spec(_git_apply, values=data("--directory:write -p -C --whitespace --exclude --include")),
    "maintenance": spec(unknown_use("git maintenance runs scheduled tasks that fetch and repack")),
    "config": spec(_git_config, values="--file:write -f:write --blob --type --default --comment"),
    "submodule": spec(_git_submodule, posix=True),
    "bisect": spec(_git_bisect, posix=True),
    **dict.fromkeys("filter-branch mergetool difftool daemon instaweb send-email web--browse credential "
                    "credential-store svn p4 cvsimport quiltimport request-pull".split(),
                    spec(unknown_use("this git command runs other programs"))),
}


GIT = Spec(operands="data", values={k.partition(":")[0]: (k.partition(":")[2] or "data")  # type: ignore[misc]
                                     for k in _GIT_GLOBAL_VALUES.split()},
            effects={"-c": "code", "--config-env": "code", "--paginate": "code", "-p": "code"},
            subcommands=_GIT_SUB, strict=True,
            flags=frozenset("--no-pager -P --no-replace-objects --bare --literal-pathspecs --glob-pathspecs "
                            "--noglob-pathspecs --icase-pathspecs --no-optional-locks --version --help "
                            "--html-path --man-path --info-path".split()))

