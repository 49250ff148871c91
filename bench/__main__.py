"""Run every benchmark: ``python -m bench [NAME ...]`` (or ``make bench``).

Prints the figures; a run of all of them also writes them to ``bench/RESULTS.md`` with the
machine they came from, and the README shows the latest table. Benchmarks report, they never assert.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import compile_bytecode, decisions, history, ingest, judge, load, policy, usage

BENCHES = {"policy": policy.run, "judge": judge.run, "usage": usage.run, "ingest": ingest.run,
           "decisions": decisions.run, "history": history.run, "load": load.run}
#: Run only when named (minutes each): ``python -m bench history10k``, ``python -m bench load1000``.
LONG = {"history10k": history.run_long, "load1000": load.run_sustained}


def main() -> None:
    which = [name for name in {**BENCHES, **LONG} if name in sys.argv[1:]] or list(BENCHES)
    compile_bytecode()
    sections = []
    for name in which:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            {**BENCHES, **LONG}[name]()
        text = out.getvalue()
        sys.stdout.write(text)
        sys.stdout.flush()
        sections.append(f"## {name}\n\n```\n{text.rstrip()}\n```\n")
    if which != list(BENCHES):
        return  # RESULTS.md holds the figures of one whole run only
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    header = f"# Benchmark results\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}.\n\n"
    (Path(__file__).parent / "RESULTS.md").write_text(header + "\n".join(sections), encoding="utf-8")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal core can abort the process at interpreter exit (a core thread releasing the GIL
    # while Python finalizes): every environment is shut down by now, so leave without finalizing.
    os._exit(0)
