"""jobgov's benchmarks: each prints figures; none asserts on time (run with ``make bench``)."""
