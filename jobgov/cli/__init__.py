"""The ``jobgov`` command line: a thin layer over jobgov's typed Python API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from jobgov.cli import jobs, mc, policy, usage
from jobgov.cli._common import fail

app = typer.Typer(
    name="jobgov",
    help="Governance and cost control for AI coding-agent jobs, on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(policy.app, name="policy")
app.add_typer(mc.app, name="mc")
usage.register(app)
policy.register_replay(app)
jobs.register(app)

TaskQueueOpt = Annotated[str, typer.Option("--task-queue", envvar="JOBGOV_TASK_QUEUE", help="The task queue to poll.")]


@app.command()
def worker(
    address: jobs.AddressOpt = None,
    namespace: jobs.NamespaceOpt = None,
    task_queue: TaskQueueOpt = "jobgov",
    max_jobs: Annotated[int, typer.Option("--max-jobs", min=1, envvar="JOBGOV_MAX_JOBS",
                                          help="Jobs whose event streams this worker holds at once; "
                                               "more wait as `queued`.")] = 1000,
    metrics_bind: Annotated[str | None, typer.Option(
        "--metrics-bind", envvar="JOBGOV_METRICS_BIND",
        help="Serve Prometheus metrics (Temporal's and jobgov's) on HOST:PORT.")] = None,
    workflow_tasks: Annotated[int | None, typer.Option(
        "--workflow-tasks", min=2, envvar="JOBGOV_WORKFLOW_TASKS",
        help="At most this many workflow tasks at once, 2 or more (default: the SDK's, 100); a few (4) "
             "keep a loaded worker's tasks from waiting inside it.")] = None,
    agent_queue: Annotated[str | None, typer.Option(
        "--agent-queue", envvar="JOBGOV_AGENT_QUEUE",
        help="Run on an agent's host: serve only the agent-side activities (stream, replies, prompts, "
             "aborts) of jobs started with this --agent-queue, no workflows.")] = None,
    gc_threshold: Annotated[int, typer.Option(
        "--gc-threshold", min=0, envvar="JOBGOV_GC_THRESHOLD",
        help="Python's garbage collector runs its youngest generation every N new objects (Python's "
             "default is 700), after freezing what the worker holds once started; 0 leaves the "
             "collector as Python sets it.")] = 20_000,
    agent_keepalive: Annotated[float, typer.Option(
        "--agent-keepalive", min=0.1, envvar="JOBGOV_AGENT_KEEPALIVE",
        help="Seconds an idle connection to an agent is kept for the next call; keep it below the "
             "idle timeout of the agent and of any proxy before it.")] = 30.0,
) -> None:
    """Run a jobgov worker (workflows and activities) until Ctrl-C or SIGTERM."""
    # Worker-side modules are imported here only: the other commands never load them.
    from jobgov.client import InputError, JobGovError
    from jobgov.opencode.credentials import CredentialsError
    from jobgov.run import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: a line per reply, prompt and reconcile (at 100 jobs over
    # 100 lines a second, and 3 % of the worker's CPU). Its warnings and errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        asyncio.run(run_worker(address, namespace, agent_queue or task_queue, max_jobs=max_jobs,
                               metrics_bind=metrics_bind, agent_host=agent_queue is not None,
                               workflow_tasks=workflow_tasks, gc_threshold=gc_threshold,
                               agent_keepalive=agent_keepalive))
    except (InputError, CredentialsError) as exc:
        fail(str(exc))
    except JobGovError as exc:
        fail(str(exc), jobs.EXIT_RUNTIME)


@app.command()
def dev(
    port: Annotated[int, typer.Option("--port", help="Temporal's gRPC port.")] = 7233,
    ui_port: Annotated[int, typer.Option("--ui-port", help="The Temporal Web UI's port.")] = 8233,
    db: Annotated[Path, typer.Option("--db", help="The SQLite file; kept across runs.")] = Path(".jobgov/temporal.db"),
    task_queue: TaskQueueOpt = "jobgov",
) -> None:
    """Run an embedded Temporal dev server and a jobgov worker until Ctrl-C."""
    from jobgov.client import JobGovError
    from jobgov.devserver import DevServer, DevServerError
    from jobgov.run import run_worker, stop_on_signals

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def serve() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        async with DevServer(port=port, ui_port=ui_port, db=db) as server:
            typer.echo(f"Temporal dev server: {server.address} (database {server.db}, log {server.log_path})")
            typer.echo(f"Temporal UI:         {server.ui_url}")
            typer.echo(f"  awaiting approval: {server.list_url('awaiting-approval')}")
            typer.echo(f"  paused:            {server.list_url('paused')}")
            typer.echo(f"Worker:              task queue {task_queue}")
            typer.echo(f"Point clients at it: export TEMPORAL_ADDRESS={server.address}")
            typer.echo("Ctrl-C stops the worker and the server.")
            if not stop.is_set():
                await run_worker(server.address, server.namespace, task_queue, stop=stop, handle_signals=False)
        typer.echo("stopped")

    try:
        asyncio.run(serve())
    except (DevServerError, JobGovError) as exc:
        fail(str(exc), jobs.EXIT_RUNTIME)


@app.command()
def demo(
    until_settled: Annotated[bool, typer.Option(
        "--until-settled", metavar="", help="Leave once the three jobs are where the demo takes them, "
                                            "instead of staying up until Ctrl-C.")] = False,
    fake_agent: Annotated[bool, typer.Option("--fake-agent", metavar="",
                                             help="Use the fake agent, not a real opencode.")] = False,
    port: Annotated[int, typer.Option("--port", help="Temporal's gRPC port (0: 7233 if free, else any).")] = 0,
    ui_port: Annotated[int, typer.Option("--ui-port", help="The Web UI's port (0: 8233 if free, else any).")] = 0,
    db: Annotated[Path | None, typer.Option("--db", help="The SQLite file (default: a new one for this "
                                                         "run, removed at the end).")] = None,
) -> None:
    """A plan of three governed jobs: one completes, one waits for you, one reaches its budget."""
    from jobgov.demo import run_demo

    logging.basicConfig(level=logging.ERROR)
    raise typer.Exit(run_demo(until_settled=until_settled, port=port, ui_port=ui_port, db=db, fake_agent=fake_agent))


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point (``argv``: the arguments, default ``sys.argv[1:]``).

    Exits 0 on success, 1 on a runtime failure, 2 on bad input, every time. It leaves without
    finalizing the interpreter: the Temporal core's Rust threads outlive ``asyncio.run`` and can
    take the GIL while Python finalizes, which aborts the process (``Fatal Python error:
    PyGILState_Release``, exit 134 or 139) after the right answer was printed
    (temporalio/sdk-python#300). Every command has shut its clients, workers and servers down
    by then, and output and logs are flushed first. In-process callers use :data:`app`.
    """
    _leave(_run(argv))


def _run(argv: list[str] | None) -> int:
    """Run the command ``argv``; returns its exit code."""
    try:
        app(args=argv, prog_name="jobgov")
    except SystemExit as exc:
        return _exit_code(exc.code)
    except KeyboardInterrupt:
        return 130
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message") prints it and exits 1
    return 1


def _leave(code: int) -> NoReturn:
    """Flush what the command wrote, then exit without finalizing the interpreter."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (``jobgov jobs | head``)
            stream.flush()
    os._exit(code)
