"""How long the closed-world judge takes per ask: normalise (parse, model, realpath) plus decide.

Two inputs: the benign corpus of real agent commands, and pathological inputs built to be
slow (long chains, deep nesting, huge words); every decision must stay bounded.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from bench import show
from jobgov.configfile import parse_plan_config
from jobgov.domain.asks import PermissionAsk
from jobgov.domain.decide import evaluate
from jobgov.policy.normalize import normalize
from tests.helpers import ROOT

SEED = ("permissions:\n  shell_command: {inside_worktree: auto-approve, outside_worktree: ask-user}\n"
        "rules:\n  - {category: shell_command, match: 'git push*', action: deny}\n")
PATHOLOGICAL = {
    "2,000 x `cd a;`": "cd a; " * 2000 + "ls",
    "10,000-segment chain": "true && " * 10_000 + "ls",
    "500-deep subshells": "(" * 500 + "ls" + ")" * 500,
    "300-deep $( )": "echo " + "$(" * 300 + "ls" + ")" * 300,
    "100,000-char word": "echo " + "a" * 100_000,
    "9-deep bash -c": "",
    "brace bomb": "echo " + "{a,b}" * 12,
}


def _nested() -> str:
    command = "rm x"
    for _ in range(9):
        command = "bash -c " + "'" + command.replace("'", "'\\''") + "'"
    return command


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def _time(policy: object, ask: PermissionAsk, worktree: str) -> float:
    t0 = time.perf_counter()
    evaluate(policy, normalize(ask, worktree))  # type: ignore[arg-type]
    return (time.perf_counter() - t0) * 1e3


def run(rounds: int = 20) -> dict[str, str]:
    policy = parse_plan_config(SEED).policy_for(None)
    rows = [json.loads(line) for line in (ROOT / "tests/fixtures/shell/benign_commands.jsonl").read_text().splitlines()]
    PATHOLOGICAL["9-deep bash -c"] = _nested()
    figures: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as worktree:
        (Path(worktree) / "src").mkdir()
        asks = [PermissionAsk.model_validate({"id": "p", "sessionID": "s", "permission": "bash",
                                              "metadata": {"command": r["command"].replace("{wt}", worktree)}})
                for r in rows]
        benign = [_time(policy, ask, worktree) for _ in range(rounds) for ask in asks]
        figures["judge, benign corpus"] = (f"p50 {statistics.median(benign):.2f} ms, p99 {_p(benign, 99):.2f} ms "
                                           f"({len(asks)} real agent commands x {rounds})")
        worst = 0.0
        for name, command in PATHOLOGICAL.items():
            ask = PermissionAsk.model_validate({"id": "p", "sessionID": "s", "permission": "bash",
                                                "metadata": {"command": command}})
            times = [_time(policy, ask, worktree) for _ in range(3)]
            worst = max(worst, max(times))
            figures[f"judge, {name}"] = f"{statistics.median(times):.1f} ms"
        figures["judge, slowest pathological input"] = f"{worst:.1f} ms"
    return show("judge:", figures)
