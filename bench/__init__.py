"""jobgov's benchmarks: each prints figures; none asserts on time (run with ``make bench``)."""


def show(title: str, figures: dict[str, str]) -> dict[str, str]:
    """Print a benchmark's ``title`` and its figures, one per line; returns the figures."""
    print(title)
    for name, value in figures.items():
        print(f"  {name}: {value}")
    return figures
