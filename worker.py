"""Run a jobgov worker: ``python worker.py [--address HOST:PORT] [--namespace NS] [--task-queue Q]``.

A thin entry point over :func:`jobgov.worker.run_worker` (the same as ``jobgov worker``).
Defaults come from ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE`` and ``JOBGOV_TASK_QUEUE``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the worker until SIGINT/SIGTERM; returns the exit status."""
    parser = argparse.ArgumentParser(description="Run a jobgov worker.")
    parser.add_argument("--address", default=os.environ.get("TEMPORAL_ADDRESS"),
                        help="Temporal address (env TEMPORAL_ADDRESS; default localhost:7233)")
    parser.add_argument("--namespace", default=os.environ.get("TEMPORAL_NAMESPACE") or "default",
                        help="Temporal namespace (env TEMPORAL_NAMESPACE; default 'default')")
    parser.add_argument("--task-queue", default=os.environ.get("JOBGOV_TASK_QUEUE") or "jobgov",
                        help="task queue to poll (env JOBGOV_TASK_QUEUE; default 'jobgov')")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from jobgov.client import JobGovError
    from jobgov.worker import run_worker

    try:
        asyncio.run(run_worker(args.address, args.namespace, args.task_queue))
    except JobGovError as exc:
        print(f"jobgov: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
