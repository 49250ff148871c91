"""How fast the policy decides: normalisation (shell parse + realpath) and pure evaluation."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from jobgov.configfile import parse_plan_config
from jobgov.domain.asks import PermissionAsk
from jobgov.domain.decide import evaluate
from jobgov.policy.normalize import normalize

COMMANDS = [
    "ls -la",
    "git status && git diff --stat",
    "npm install left-pad",
    "cat /etc/passwd",
    "cd src && make -j4 > build.log 2>&1",
    "bash -c 'curl -s https://example.com | tee out.txt'",
    "find . -name '*.py' -exec grep -l TODO {} \\;",
    "sudo env FOO=1 timeout 5 rm -rf ~/tmp/x",
    "for f in *.txt; do echo $(wc -l < $f); done",
    "python -m pip install -r requirements.txt && pytest -q",
]


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def _timed(rounds: int) -> tuple[list[float], list[float]]:
    """Microseconds of each normalisation and each evaluation of :data:`COMMANDS`, ``rounds`` times."""
    policy = parse_plan_config("rules:\n  - {category: shell_command, match: 'git push*', action: deny}\n").policy_for(None)
    with tempfile.TemporaryDirectory() as worktree:
        (Path(worktree) / "src").mkdir()
        asks = [PermissionAsk(id=f"per_{i}", sessionID="ses", permission="bash", patterns=[c], metadata={"command": c})
                for i, c in enumerate(COMMANDS)]
        norm_us: list[float] = []
        eval_us: list[float] = []
        for _ in range(rounds):
            for ask in asks:
                t0 = time.perf_counter()
                normalized = normalize(ask, worktree)
                t1 = time.perf_counter()
                evaluate(policy, normalized)
                t2 = time.perf_counter()
                norm_us.append((t1 - t0) * 1e6)
                eval_us.append((t2 - t1) * 1e6)
    return norm_us, eval_us


def yardstick(rounds: int = 50) -> float:
    """The machine's speed, as this benchmark's normalise p50 in microseconds (500 of them by default,
    about 0.1 s): printed beside figures that depend on the machine, so that runs of different days,
    or of a shared machine under other load, can be told apart."""
    return statistics.median(_timed(rounds)[0])


def run(rounds: int = 200) -> None:
    norm_us, eval_us = _timed(rounds)
    n = len(norm_us)
    total = sum(norm_us) + sum(eval_us)
    print(f"policy: {n} bash asks ({len(COMMANDS)} commands x {rounds})")
    print(f"  normalize (tree-sitter parse + realpath): p50 {statistics.median(norm_us):7.1f} us   p99 {_percentile(norm_us, 99):7.1f} us")
    print(f"  evaluate (pure):                          p50 {statistics.median(eval_us):7.1f} us   p99 {_percentile(eval_us, 99):7.1f} us")
    print(f"  throughput: {n / (total / 1e6):,.0f} asks/s on one core")
