"""Normalising asks (real paths, real symlinks) and deciding them (pure, strictest wins)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobgov.configfile import parse_plan_config
from jobgov.domain.asks import Action, Category, NormalizedAsk, Operation, PermissionAsk
from jobgov.domain.decide import evaluate
from jobgov.policy.normalize import normalize
from tests.helpers import CAPTURES

A, ASK, D = Action.AUTO_APPROVE, Action.ASK_USER, Action.DENY
DEFAULTS = parse_plan_config("").policy_for(None)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """A worktree with a symlink pointing outside it, and an outside directory."""
    worktree = tmp_path / "wt"
    outside = tmp_path / "outside"
    home = tmp_path / "home"
    for d in (worktree / "src", outside, home / ".ssh"):
        d.mkdir(parents=True)
    (worktree / "escape").symlink_to(outside)
    (worktree / "inner").symlink_to(worktree / "src")
    return {"wt": worktree, "outside": outside, "home": home}


def ask(permission: str, patterns: list[str] | None = None, **metadata: Any) -> PermissionAsk:
    return PermissionAsk(id="per_1", sessionID="ses_1", permission=permission, patterns=patterns or [], metadata=metadata)


def decide(request: PermissionAsk, tree: dict[str, Path], yaml: str = "", job: str | None = None) -> Action:
    policy = parse_plan_config(yaml).policy_for(job)
    return evaluate(policy, normalize(request, str(tree["wt"]), home=str(tree["home"]))).action


@pytest.mark.parametrize(
    ("filepath", "expected"),
    [
        ("{wt}/src/a.py", A),
        ("{wt}/new/deeper/file.txt", A),  # missing parents are fine
        ("{wt}/escape/x.txt", D),  # symlink inside pointing outside
        ("{wt}/inner/x.txt", A),  # symlink inside pointing inside
        ("{wt}/src/../../outside/x", D),
        ("{outside}/x", D),
        ("/etc/passwd", D),
        ("{wt}", A),
    ],
)
def test_edit_paths(tree: dict[str, Path], filepath: str, expected: Action) -> None:
    path = filepath.format(wt=tree["wt"], outside=tree["outside"])
    assert decide(ask("edit", ["x"], filepath=path), tree) is expected


def test_edit_without_filepath_uses_patterns(tree: dict[str, Path]) -> None:
    assert decide(ask("edit", ["src/a.py"]), tree) is A
    assert decide(ask("edit", ["../outside/a.py"]), tree) is D
    assert decide(ask("edit", ["src/a.py", "escape/b"]), tree) is D


def test_edit_with_no_path_is_never_approved(tree: dict[str, Path]) -> None:
    decision = evaluate(DEFAULTS, normalize(ask("edit"), str(tree["wt"])))
    assert decision.action is not A


def test_worktree_given_through_a_symlink(tree: dict[str, Path], tmp_path: Path) -> None:
    link = tmp_path / "wt-link"
    link.symlink_to(tree["wt"])
    normalized = normalize(ask("edit", filepath=str(tree["wt"] / "a")), str(link))
    assert normalized.worktree == os.path.realpath(tree["wt"])
    assert normalized.operations[0].inside is True


def test_home_expansion_in_patterns(tree: dict[str, Path]) -> None:
    assert decide(ask("edit", ["~/.ssh/authorized_keys"]), tree) is D
    assert decide(ask("read", ["$HOME/.ssh/id_rsa"]), tree) is ASK


def test_external_directory_from_edit(tree: dict[str, Path]) -> None:
    out = tree["outside"]
    request = ask("external_directory", [f"{out}/*"], filepath=f"{out}/x.txt", parentDir=str(out))
    normalized = normalize(request, str(tree["wt"]))
    assert [(o.category, o.inside) for o in normalized.operations] == [(Category.FILE_EDIT, False)]
    assert evaluate(DEFAULTS, normalized).action is D
    # Known to come from the read tool: judged as a read outside (ask-user by default).
    assert evaluate(DEFAULTS, normalize(request, str(tree["wt"]), tool_name="read")).action is ASK


def test_external_directory_from_bash(tree: dict[str, Path]) -> None:
    out = tree["outside"] / "doomed"
    request = ask("external_directory", [f"{out}/*"], command=f"rm -rf {out}", directories=[str(out)])
    request.metadata["patterns"] = [f"{out}/*"]
    assert decide(request, tree) is D
    lenient = "permissions:\n  shell_command: {outside_worktree: ask-user}\n"
    assert decide(request, tree, lenient) is ASK


@pytest.mark.parametrize(
    ("permission", "expected_category", "expected"),
    [
        ("webfetch", Category.NETWORK_ACCESS, D),
        ("websearch", Category.NETWORK_ACCESS, D),
        ("codesearch", Category.NETWORK_ACCESS, D),
        ("doom_loop", Category.DOOM_LOOP, ASK),
        ("task", Category.OTHER, ASK),
        ("todowrite", Category.OTHER, ASK),
        ("github_create_issue", Category.MCP_TOOLS, A),
        ("read", Category.FILE_READ, A),
        ("glob", Category.FILE_READ, A),
        ("grep", Category.FILE_READ, A),
        ("list", Category.FILE_READ, A),
    ],
)
def test_permission_mapping(tree: dict[str, Path], permission: str, expected_category: Category, expected: Action) -> None:
    decision = evaluate(DEFAULTS, normalize(ask(permission, ["*"]), str(tree["wt"])))
    assert (decision.category, decision.action) == (expected_category, expected)


def test_read_outside_asks(tree: dict[str, Path]) -> None:
    assert decide(ask("read", [str(tree["outside"] / "f")], filepath=str(tree["outside"] / "f")), tree) is ASK


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("ls -la", A),
        ("git status && git diff", A),
        ("cat /etc/passwd", D),
        ("echo hi > /tmp/x", D),
        ("echo hi > out.txt", A),
        ("cd escape && touch x", D),
        ("cd src && touch x", A),
        ("cat escape/secret", D),
        ("curl https://example.com", D),
        ("npm install left-pad", ASK),
        ("pip install requests && curl http://x", D),
        ("bash -c 'rm -rf ~/'", D),
        ("echo $(cat ~/.ssh/id_rsa)", D),
        ("", ASK),
        ("echo 'unterminated", ASK),
        ("sudo rm -rf /", D),
    ],
)
def test_bash_defaults(tree: dict[str, Path], command: str, expected: Action) -> None:
    assert decide(ask("bash", [command], command=command), tree) is expected


def test_install_judged_by_install_packages_alone(tree: dict[str, Path]) -> None:
    yaml = "permissions:\n  install_packages: auto-approve\n  network_access: deny\n"
    assert decide(ask("bash", command="pip install requests"), tree, yaml) is A
    assert decide(ask("bash", command="pip install requests && curl http://example.com"), tree, yaml) is D


def test_unparsable_command_is_ask_user_even_when_shell_is_auto(tree: dict[str, Path]) -> None:
    yaml = "permissions:\n  shell_command: auto-approve\n"
    assert decide(ask("bash", command="if true; then echo"), tree, yaml) is ASK
    # ... but a configured deny still stands.
    assert decide(ask("bash", command="if true; then echo"), tree, "permissions:\n  shell_command: deny\n") is D


def test_bash_without_metadata_uses_patterns(tree: dict[str, Path]) -> None:
    assert decide(ask("bash", ["ls", "rm -rf /etc"]), tree) is D


RULES = """\
rules:
  - {category: shell_command, match: "git push*", action: deny}
  - {match: "*production*", action: ask-user}
  - {category: network_access, match: "https://internal.example.com/*", action: deny}
permissions:
  network_access: ask-user
"""


def test_rules_make_decisions_stricter(tree: dict[str, Path]) -> None:
    policy = parse_plan_config(RULES).policy_for(None)
    wt = str(tree["wt"])
    push = evaluate(policy, normalize(ask("bash", command="git status && git push origin main"), wt))
    assert push.action is D
    assert push.rule == "shell_command: git push* -> deny"
    assert "git push origin main" in push.reason
    # Rules match the command as written too (wrappers and all).
    assert evaluate(policy, normalize(ask("bash", command="sudo git push"), wt)).action is D
    prod = evaluate(policy, normalize(ask("edit", filepath=f"{wt}/config/production.yaml"), wt))
    assert (prod.action, prod.rule) == (ASK, "*: *production* -> ask-user")
    fetch = evaluate(policy, normalize(ask("webfetch", ["https://internal.example.com/a"], url="https://internal.example.com/a"), wt))
    assert fetch.action is D
    other = evaluate(policy, normalize(ask("webfetch", ["https://example.com"], url="https://example.com"), wt))
    assert (other.action, other.rule) == (ASK, None)


def test_a_rule_never_loosens(tree: dict[str, Path]) -> None:
    policy = parse_plan_config("rules:\n  - {match: 'cat *', action: ask-user}\n").policy_for(None)
    decision = evaluate(policy, normalize(ask("bash", command="cat /etc/shadow"), str(tree["wt"])))
    assert (decision.action, decision.rule) == (D, None)


def test_strictest_operation_decides_and_is_named() -> None:
    normalized = NormalizedAsk(
        ask=ask("bash"),
        worktree="/w",
        operations=[
            Operation(category=Category.SHELL_COMMAND, inside=True, subject="ls"),
            Operation(category=Category.INSTALL_PACKAGES, subject="npm i x"),
            Operation(category=Category.SHELL_COMMAND, inside=False, subject="cat /etc/x", detail="arg /etc/x"),
            Operation(category=Category.NETWORK_ACCESS, subject="curl x"),
        ],
    )
    decision = evaluate(DEFAULTS, normalized)
    assert (decision.action, decision.category, decision.subject) == (D, Category.SHELL_COMMAND, "cat /etc/x")
    assert "outside the worktree" in decision.reason


def test_no_operations_is_ask_user() -> None:
    assert evaluate(DEFAULTS, NormalizedAsk(ask=ask("x"), worktree="/w", operations=[])).action is ASK


def test_captured_asks(tree: dict[str, Path], tmp_path: Path) -> None:
    """Every ask in the real captures gets a decision, and the obvious ones the expected one."""
    seen: dict[str, Action] = {}
    worktree = tmp_path / "project"
    worktree.mkdir()
    for path in sorted(CAPTURES.glob("*.event.jsonl")):
        for line in path.read_text().splitlines():
            # The captures' worktree, /srv/agent/project, stands here for one that exists.
            event = json.loads(line.replace("/srv/agent/project", str(worktree)))
            if event["type"] == "permission.asked":
                request = PermissionAsk.model_validate(event["properties"])
                decision = evaluate(DEFAULTS, normalize(request, str(worktree)))
                seen[f"{path.name}:{request.permission}:{request.patterns[0]}"] = decision.action
    assert seen["approve.event.jsonl:bash:ls -la"] is A
    assert seen["approve.event.jsonl:edit:hello.txt"] is A
    assert seen["approve.event.jsonl:external_directory:/srv/agent/outside/*"] is D
    assert seen["reject_external.event.jsonl:external_directory:/srv/agent/outside/doomed/*"] is D
    assert seen["webfetch.event.jsonl:webfetch:http://127.0.0.1:54097/health"] is D
    assert len(seen) >= 8


@pytest.mark.parametrize("request_", [ask("bash", command="ls"), ask("edit", filepath="/gone/wt/a.txt")])
def test_nothing_is_auto_approved_for_a_worktree_that_does_not_exist_here(request_: PermissionAsk) -> None:
    """The worker judging the ask cannot see the worktree (another host, a typo): a person decides."""
    normalized = normalize(request_, "/gone/wt")
    decision = evaluate(DEFAULTS, normalized)
    assert decision.action is ASK
    assert f"its worktree /gone/wt does not exist on {socket.gethostname()}" in decision.reason


def test_unknown_working_directory_is_outside(tree: dict[str, Path]) -> None:
    assert decide(ask("bash", command="cd $WHERE && touch x"), tree) is D
    assert decide(ask("bash", command="cd - && ls"), tree) is D


@pytest.mark.parametrize(
    "command",
    ["PATH=./bin make", "export LD_PRELOAD=./hook.so; ls", "env BASH_ENV=./x bash -c ls", "declare -x PATH=.",
     "NODE_OPTIONS='--require ./x.js' npm test", "PATH+=:./bin; make"],
)
def test_setting_loader_variables_is_never_auto_approved(tree: dict[str, Path], command: str) -> None:
    yaml = "permissions:\n  shell_command: auto-approve\n"
    decision = evaluate(parse_plan_config(yaml).policy_for(None), normalize(ask("bash", command=command), str(tree["wt"])))
    assert decision.action is ASK
    assert "changes what the commands run" in decision.reason


def test_ordinary_assignments_are_fine(tree: dict[str, Path]) -> None:
    assert decide(ask("bash", command="CI=1 NODE_ENV=test make"), tree) is A
    assert decide(ask("bash", command="foo=1 bar=2 make"), tree) is A  # shell variables
    assert decide(ask("bash", command='git commit -m "PATH=x"'), tree) is A
    # Closed world: a variable a tool may read to pick a program (CC) is not known to be harmless.
    assert decide(ask("bash", command="CC=clang make"), tree) is ASK


_SHELLISH = "abcdefghijklmnopqrstuvwxyz -_=./~$'\"`|&;<>(){}[]*?!#\\\n\t0123456789"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_SHELLISH, max_size=60) | st.lists(st.sampled_from(
    ["python", "-m", "-W", "-X", "pip", "install", "sudo", "env", "xargs", "find", "-exec", "bash", "-c", "cd",
     "npm", "i", "git", "push", "timeout", "5", "&&", "|", ";", ">", "~/x", "$(", ")", "'", "<<EOF"]), max_size=8
).map(" ".join))
def test_any_command_gets_a_decision_and_never_a_crash(command: str) -> None:
    """Fail closed, never crash: whatever the agent sends, the policy answers (and never errs open)."""
    normalized = normalize(ask("bash", command=command), "/srv/agent/project")
    decision = evaluate(DEFAULTS, normalized)
    assert decision.action in (A, ASK, D)
    if not command.strip():
        assert decision.action is not A
