"""``jobgov`` under cProfile, for ``BENCH_PROFILE``: ``python -m bench.profile_worker OUT ARGS...``.

``python -m cProfile jobgov ...`` writes nothing: :func:`jobgov.cli.main` leaves by ``os._exit``
(the Temporal core's threads can abort a finalizing interpreter). This runs the same command
through :data:`jobgov.cli.app`, writes the profile, then leaves the same way.
"""

from __future__ import annotations

import cProfile
import sys

from jobgov import cli


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    profile = cProfile.Profile()
    code = 0
    profile.enable()
    try:
        cli.app(args=args, prog_name="jobgov")
    except SystemExit as exc:
        code = cli._exit_code(exc.code)
    except KeyboardInterrupt:
        code = 130
    finally:
        profile.disable()
        profile.dump_stats(out)
    cli._leave(code)


if __name__ == "__main__":
    main()
