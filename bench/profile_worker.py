"""``jobgov`` under cProfile, for ``BENCH_PROFILE``: ``python -m bench.profile_worker OUT ARGS...``.

``python -m cProfile jobgov ...`` writes nothing: :func:`jobgov.cli.main` leaves by ``os._exit``
(the Temporal core's threads can abort a finalizing interpreter). This runs the same command
as ``main`` does, writes the profile, then leaves the same way.
"""

from __future__ import annotations

import cProfile
import sys

from jobgov import cli


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    profile = cProfile.Profile()
    profile.enable()
    try:
        code = cli._run(args)
    finally:
        profile.disable()
        profile.dump_stats(out)
    cli._leave(code)


if __name__ == "__main__":
    main()
