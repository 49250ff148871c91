"""jobgov's benchmarks: each prints figures; none asserts on time (run with ``make bench``)."""

import compileall
from pathlib import Path


def compile_bytecode() -> None:
    """Cache jobgov's bytecode, as an installed jobgov has it (pip compiles what it installs).

    Each new workflow run's sandbox imports its workflow's module again; with no bytecode cached
    (a source checkout under ``PYTHONDONTWRITEBYTECODE``, as on this machine) every import compiles
    the source anew: about 7 ms of a worker's CPU per new job, a cost of the checkout, not of jobgov.
    """
    compileall.compile_dir(Path(__file__).parent.parent / "jobgov", quiet=1)


def show(title: str, figures: dict[str, str]) -> dict[str, str]:
    """Print a benchmark's ``title`` and its figures, one per line; returns the figures."""
    print(title)
    for name, value in figures.items():
        print(f"  {name}: {value}")
    return figures
