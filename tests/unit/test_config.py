"""The plan config: the documented shape, defaults, merging and every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobgov.configfile import ConfigError, load_plan_config, parse_plan_config
from jobgov.domain.asks import Action, Category

EXAMPLE = """\
plan: refactor-auth
permissions:
  file_edit:
    inside_worktree: auto-approve
    outside_worktree: deny
  shell_command:
    inside_worktree: auto-approve
    outside_worktree: ask-user
  network_access: deny
  install_packages: ask-user
  mcp_tools: auto-approve
rules:                      # optional, ordered; each can only make a decision stricter
  - {category: shell_command, match: "git push*", action: deny}
jobs:                       # per-job overrides, merged key by key over the plan's
  fix-typo:
    permissions:
      shell_command: {inside_worktree: ask-user}
"""

A, ASK, D = Action.AUTO_APPROVE, Action.ASK_USER, Action.DENY


def test_documented_example_loads() -> None:
    config = parse_plan_config(EXAMPLE, "plan.yaml")
    assert config.plan == "refactor-auth"
    policy = config.policy_for(None)
    assert policy.action_for(Category.SHELL_COMMAND, inside=True) is A
    assert policy.action_for(Category.SHELL_COMMAND, inside=False) is ASK
    assert policy.rules[0].describe() == "shell_command: git push* -> deny"


def test_job_override_merges_key_by_key() -> None:
    policy = parse_plan_config(EXAMPLE).policy_for("fix-typo")
    assert policy.action_for(Category.SHELL_COMMAND, inside=True) is ASK
    # outside_worktree still comes from the plan, not from the defaults (deny).
    assert policy.action_for(Category.SHELL_COMMAND, inside=False) is ASK
    assert policy.action_for(Category.FILE_EDIT, inside=True) is A


def test_unknown_job_gets_the_plan_policy() -> None:
    config = parse_plan_config(EXAMPLE)
    assert config.policy_for("other-job") == config.policy_for(None)


def test_job_override_over_a_single_action() -> None:
    config = parse_plan_config(
        "permissions:\n  shell_command: deny\njobs:\n  j:\n    permissions:\n      shell_command: {inside_worktree: auto-approve}\n"
    )
    policy = config.policy_for("j")
    assert policy.action_for(Category.SHELL_COMMAND, True) is A
    assert policy.action_for(Category.SHELL_COMMAND, False) is D


def test_job_rules_are_appended() -> None:
    config = parse_plan_config(
        "rules:\n  - {match: 'rm *', action: deny}\njobs:\n  j:\n    rules:\n      - {match: 'make *', action: ask-user}\n"
    )
    assert [r.match for r in config.policy_for("j").rules] == ["rm *", "make *"]
    assert [r.match for r in config.policy_for(None).rules] == ["rm *"]


@pytest.mark.parametrize(
    ("category", "inside", "outside"),
    [
        (Category.FILE_EDIT, A, D),
        (Category.SHELL_COMMAND, A, D),
        (Category.FILE_READ, A, ASK),
        (Category.NETWORK_ACCESS, D, D),
        (Category.INSTALL_PACKAGES, ASK, ASK),
        (Category.MCP_TOOLS, A, A),
        (Category.DOOM_LOOP, ASK, ASK),
        (Category.OTHER, ASK, ASK),
    ],
)
def test_defaults(category: Category, inside: Action, outside: Action) -> None:
    for policy in (parse_plan_config("").policy_for(None), load_plan_config(None).policy_for("x")):
        assert policy.action_for(category, True) is inside
        assert policy.action_for(category, False) is outside
        assert policy.action_for(category, None) is outside  # unknown location = outside


def test_empty_file_and_comments_only_are_defaults() -> None:
    assert parse_plan_config("# nothing\n") == parse_plan_config("")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("permissions:\n  file_edit: maybe\n", "p.yaml:2: permissions.file_edit: unknown action 'maybe'"),
        ("permissions:\n  file_edit:\n    inside_worktree: allow\n", "p.yaml:3: permissions.file_edit.inside_worktree: unknown action 'allow'"),
        ("permissions:\n  file_edit:\n    inside: deny\n", "p.yaml:3: permissions.file_edit.inside: unknown key"),
        ("permissions:\n  shell: deny\n", "p.yaml:2: permissions.shell: unknown key"),
        ("permissions:\n  file_edit: 3\n", "p.yaml:2: permissions.file_edit: expected an action"),
        ("permissions:\n  file_edit: deny\n  network_access: {inside_worktree: deny, outside_worktree: ask-user}\n",
         "p.yaml:3: permissions.network_access: network_access is not split by worktree"),
        ("permissions: [1, 2]\n", "p.yaml:1: permissions: Input should be a valid dictionary"),
        ("rules:\n  - {category: shell, match: x, action: deny}\n", "p.yaml:2: rules.0.category: unknown category 'shell'"),
        ("rules:\n  - {match: x, action: auto-approve}\n", "p.yaml:2: rules.0.action: rules can only make a decision stricter"),
        ("rules:\n  - {match: x, action: nope}\n", "p.yaml:2: rules.0.action: unknown action 'nope'"),
        ("rules:\n  - match: x\n", "p.yaml:2: rules.0.action: Field required"),
        ("rules:\n  - {match: '', action: deny}\n", "p.yaml:2: rules.0.match: String should have at least 1 character"),
        ("rules: deny\n", "p.yaml:1: rules: Input should be a valid list"),
        ("foo: 1\n", "p.yaml:1: foo: unknown key"),
        ("plan: x\njobs:\n  j:\n    permissions:\n      file_edit: 3\n", "p.yaml:5: jobs.j.permissions.file_edit: expected an action"),
        ("jobs:\n  j:\n    budget_x: 1\n", "p.yaml:3: jobs.j.budget_x: unknown key"),
        ("- 1\n", "p.yaml:1: (top level): expected a mapping of sections, got a list"),
        ("a: [\n", "p.yaml:2: invalid YAML"),
        ("plan: a\nplan: b\n", "p.yaml:2: invalid YAML"),
        ("permissions:\n\tfile_edit: deny\n", "p.yaml:2: invalid YAML"),
    ],
)
def test_errors_name_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_plan_config(text, "p.yaml")
    assert str(info.value).startswith(expected), str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_plan_config(tmp_path / "nope.yaml")


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(EXAMPLE)
    assert load_plan_config(path).plan == "refactor-auth"
    path.write_text("permissions:\n  file_edit: maybe\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: permissions.file_edit"):
        load_plan_config(path)
