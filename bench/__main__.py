"""Run every benchmark: ``python -m bench`` (or ``make bench``). Prints figures only."""

from __future__ import annotations

import sys

from bench import decisions, judge, policy, usage


def main() -> None:
    which = set(sys.argv[1:]) or {"policy", "judge", "usage", "decisions"}
    if "policy" in which:
        policy.run()
    if "judge" in which:
        judge.run()
    if "usage" in which:
        usage.run()
    if "decisions" in which:
        decisions.run()


if __name__ == "__main__":
    main()
