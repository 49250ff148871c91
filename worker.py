"""Run a jobgov worker: ``python worker.py [OPTIONS]``, exactly ``jobgov worker [OPTIONS]``.

The options (``--address``, ``--namespace``, ``--task-queue`` and the environment
variables they default to) are documented by ``python worker.py --help``.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from jobgov.cli import main

    sys.exit(main(["worker", *sys.argv[1:]]))
