"""Run a jobgov worker: the worker side, which imports the plugin, workflows and activities.

:func:`run_worker` connects (or takes a client), runs a
:class:`~temporalio.worker.Worker` with :class:`~jobgov.temporal.plugin.JobGovPlugin`
until it is cancelled, told to stop, or the process gets SIGINT/SIGTERM, and
then shuts the worker down explicitly: leaving it to interpreter exit lets
the Temporal core abort the process with a non-zero status.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import TypedDict

from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import Worker

from jobgov import names
from jobgov.client import InputError, UnreachableError, connect_error_reason
from jobgov.client.connection import connect_options
from jobgov.opencode.client import KEEPALIVE
from jobgov.temporal import metrics
from jobgov.temporal.activities.bundle import AgentSettings
from jobgov.temporal.plugin import DEFAULT_MAX_JOBS, JobGovPlugin

logger = logging.getLogger(__name__)

#: How long running activities get to finish after a shutdown starts. The stream activity
#: runs for the job's life; it is cancelled and Temporal retries it when a worker is back.
GRACEFUL_SHUTDOWN_SECONDS = 5.0
#: Activity slots of the worker's own task queue, for short calls (replies, prompts, notifications),
#: beyond room for the streams of jobs started before 0.4, which run there.
CALL_SLOTS = 200
#: The fewest workflow tasks ``workflow_tasks`` allows. The core polls the worker's sticky queue and
#: the task queue itself, each poll holding a slot: with one slot, a job's query went unanswered
#: for 10 s here, a known hazard of Temporal's workers (temporalio/sdk-go#719, sdk-python#877).
MIN_WORKFLOW_TASKS = 2
#: Cached workflows beyond the jobs: their plans, and room to spare. A job evicted from the cache
#: replays its history in the sandbox on its next task, so the cache holds every job the worker runs.
CACHE_SPARE = 200
#: The youngest generation's threshold of CPython's cyclic garbage collector in a jobgov worker
#: process (Python's own is 700): see :func:`tune_collector`.
GC_THRESHOLD = 20_000


class WorkerSizes(TypedDict, total=False):
    max_concurrent_activities: int
    max_cached_workflows: int
    max_concurrent_workflow_tasks: int


def stop_on_signals(stop: asyncio.Event) -> list[signal.Signals]:
    """Set ``stop`` on SIGINT and SIGTERM, where this loop can (the main thread); returns the
    signals it handles, for ``loop.remove_signal_handler``."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    return installed


def worker_options(max_jobs: int, workflow_tasks: int | None = None) -> WorkerSizes:
    """The :class:`~temporalio.worker.Worker` sizes for a worker that governs ``max_jobs`` jobs,
    running at most ``workflow_tasks`` workflow tasks at once (``None``: the SDK's default, 100).

    Raises:
        ValueError: ``workflow_tasks`` is below :data:`MIN_WORKFLOW_TASKS`.
    """
    sizes = WorkerSizes(max_concurrent_activities=max_jobs + CALL_SLOTS, max_cached_workflows=max_jobs + CACHE_SPARE)
    if workflow_tasks is not None:
        if workflow_tasks < MIN_WORKFLOW_TASKS:
            raise ValueError(f"workflow_tasks: {workflow_tasks} is below {MIN_WORKFLOW_TASKS}: a worker polls "
                             "its sticky queue and its task queue, a workflow task slot each")
        sizes["max_concurrent_workflow_tasks"] = workflow_tasks
    return sizes


#: Core log lines that are part of a normal run, logged at INFO instead of WARNING: a job's stream
#: activity finishes after its run has closed (it learns of the job's end from a heartbeat), and the
#: server no longer knows the activity when the core reports it done.
EXPECTED_CORE_LINES: tuple[str, ...] = ("Activity not found on completion",)


class _ExpectedAtInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and any(line in record.getMessage() for line in EXPECTED_CORE_LINES):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def tune_collector(threshold: int = GC_THRESHOLD) -> int:
    """Tune CPython's cyclic garbage collector for a process whose heap is mostly jobs that live long.

    A worker holds every running job's workflow, its sandbox and its stream (about 900 objects a
    job) for the job's whole life. With Python's thresholds (700, 10, 10) the collector walks that
    heap over and over while the event loop, which replies to every agent, waits: at 1,000 jobs,
    22 full collections in 144 s stopped it for up to 1.06 s each, and the collector took 24 % of
    the worker's CPU (``python -m bench.load 1000``). This moves what the process holds once it is
    up (its modules and the worker itself: ``gc.freeze``) out of the collector's sight, and collects
    the youngest generation every ``threshold`` new objects instead of every 700, so the older
    generations are walked that many times less often. Cycles are still collected, later (the
    README's "How a worker collects its garbage" has the figures).

    Process-wide, so a library never calls it unasked: ``jobgov worker`` does (``--gc-threshold``),
    through :func:`run_worker`; a worker of your own may, once it is built. Returns how many objects
    are frozen. ``threshold`` 0 leaves the collector as it is; below 0 raises :class:`ValueError`.
    """
    _check_gc_threshold(threshold)
    if threshold == 0:
        return gc.get_freeze_count()
    gc.collect()  # what is garbage now is not frozen with the rest
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(threshold, middle, oldest)
    return gc.get_freeze_count()


def _check_gc_threshold(threshold: int) -> None:
    if threshold < 0:
        raise ValueError(f"gc_threshold: {threshold} is below 0 (0 leaves Python's collector as it is)")


def worker_runtime(metrics_bind: str | None = None) -> Runtime:
    """The Temporal runtime of ``jobgov worker``: the core's log lines go to Python logging (logger
    ``temporalio.core``; those of :data:`EXPECTED_CORE_LINES` at INFO), and, with ``metrics_bind``
    (``HOST:PORT``), Prometheus metrics are served there: the SDK's own ``temporal_*`` and jobgov's
    ``jobgov_*`` (see :mod:`jobgov.temporal.metrics`).

    Raises:
        InputError: ``metrics_bind`` is not ``HOST:PORT``, or cannot be bound.
    """
    core = logging.getLogger("temporalio.core")
    if not any(isinstance(f, _ExpectedAtInfo) for f in core.filters):
        core.addFilter(_ExpectedAtInfo())
    logs = LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                         forwarding=LogForwardingConfig(logger=core))
    if metrics_bind is None:
        return Runtime(telemetry=TelemetryConfig(logging=logs))
    host, _, port = metrics_bind.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--metrics-bind {metrics_bind!r}: expected HOST:PORT, e.g. 0.0.0.0:9464")
    prometheus = PrometheusConfig(bind_address=metrics_bind, histogram_bucket_overrides=metrics.HISTOGRAM_BUCKETS)
    try:
        return Runtime(telemetry=TelemetryConfig(logging=logs, metrics=prometheus))
    except Exception as exc:  # noqa: BLE001 - the core reports a taken port as a plain exception
        raise InputError(f"--metrics-bind {metrics_bind}: cannot serve metrics there: {exc}") from None


async def connect_worker_client(address: str | None = None, namespace: str | None = None, *,
                                max_jobs: int = DEFAULT_MAX_JOBS, metrics_bind: str | None = None,
                                agent_host: bool = False, settings: AgentSettings | None = None) -> Client:
    """A client with :class:`JobGovPlugin` (the pydantic converter, workflows and activities; its
    activities' ``settings``), connected as Temporal's client config says
    (:func:`jobgov.client.connection.connect_options`), serving Prometheus metrics on
    ``metrics_bind`` when given."""
    options = connect_options(address, namespace)
    target = options["target_host"]
    runtime = worker_runtime(metrics_bind)
    try:
        plugin = JobGovPlugin(max_jobs=max_jobs, agent_host=agent_host, settings=settings)
        return await Client.connect(**options, plugins=[plugin], runtime=runtime)
    except (RuntimeError, ValueError) as exc:
        raise UnreachableError(f"Temporal is not reachable at {target} ({connect_error_reason(exc)}); start one "
                               "with `jobgov dev`, or point --address / TEMPORAL_ADDRESS at your server") from None


def _with_plugin(client: Client, max_jobs: int, settings: AgentSettings) -> Client:
    """``client`` itself when it already carries JobGovPlugin (whose ``max_jobs`` and settings then
    apply), else a copy of it that does."""
    config = client.config()
    if any(isinstance(p, JobGovPlugin) for p in config["plugins"]):
        return client
    config["plugins"] = [*config["plugins"], JobGovPlugin(max_jobs=max_jobs, settings=settings)]
    return Client(**config)


async def run_worker(
    client_or_address: Client | str | None = None,
    namespace: str | None = None,
    task_queue: str = names.DEFAULT_TASK_QUEUE,
    *,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
    on_ready: Callable[[Worker], None] | None = None,
    max_jobs: int = DEFAULT_MAX_JOBS,
    metrics_bind: str | None = None,
    agent_host: bool = False,
    workflow_tasks: int | None = None,
    gc_threshold: int = 0,
    agent_keepalive: float = KEEPALIVE,
) -> None:
    """Run a jobgov worker until cancelled, ``stop`` is set, or SIGINT/SIGTERM arrives.

    Args:
        client_or_address: A Temporal client (JobGovPlugin is added if it lacks it) or an address
            over Temporal's client config (profile file, ``TEMPORAL_*`` variables; default
            ``localhost:7233``).
        namespace: The namespace when connecting (over the config's; default ``default``).
        task_queue: The task queue to poll (jobs are started on it).
        stop: Set it to shut the worker down.
        handle_signals: Stop on SIGINT and SIGTERM (only possible in the main thread).
        on_ready: Called with the worker once it runs.
        max_jobs: How many jobs' event streams this worker holds at once (``JobGovPlugin(max_jobs)``).
            Each running job holds one slot of the streams' own task queue for its whole life; a
            job beyond that shows ``queued`` until a slot frees. The short calls have slots of
            their own, and the workflow cache holds every job plus :data:`CACHE_SPARE` (see
            :func:`worker_options`).
        workflow_tasks: At most this many workflow tasks at once, 2 or more (``None``: the SDK's
            default, 100). Workflow code runs under the GIL, one task at a time whatever this is; tasks
            beyond the few that run wait inside the worker, where their time counts against the
            server's workflow task timeout, and their threads take turns at the GIL with the
            event loop that runs the streams. A few (4) keep those tasks on the server instead
            (the README, "How many workflow tasks a worker runs at once", says what that measured).
        agent_host: Serve only the agent-side activities on ``task_queue`` (a worker on an agent's
            host, for jobs started with ``agent_queue=task_queue``), no workflows.
        metrics_bind: ``HOST:PORT`` to serve Prometheus metrics on (when connecting by address;
            a client you pass brings its own runtime).
        gc_threshold: Tune the process's garbage collector with :func:`tune_collector` once the
            worker is built, before it polls (``jobgov worker`` passes :data:`GC_THRESHOLD`); 0,
            the default, leaves it as it is.
        agent_keepalive: Seconds an idle connection to an agent is kept for the next call
            (:attr:`AgentSettings.agent_keepalive`; a client you pass that already carries
            JobGovPlugin keeps its plugin's).
    """
    sizes = worker_options(max_jobs, workflow_tasks)  # a bad size fails before connecting
    _check_gc_threshold(gc_threshold)
    settings = AgentSettings(agent_keepalive=agent_keepalive)  # a bad value fails before connecting too
    if isinstance(client_or_address, Client):
        client = _with_plugin(client_or_address, max_jobs, settings)
    else:
        client = await connect_worker_client(client_or_address, namespace, max_jobs=max_jobs,
                                             metrics_bind=metrics_bind, agent_host=agent_host, settings=settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = stop_on_signals(stop) if handle_signals else []
    worker = Worker(client, task_queue=task_queue, **sizes,
                    graceful_shutdown_timeout=timedelta(seconds=GRACEFUL_SHUTDOWN_SECONDS))
    if gc_threshold:  # now: what the process holds for good is frozen with the modules
        frozen = tune_collector(gc_threshold)
        logger.info("garbage collector tuned: %d objects frozen, thresholds %s", frozen, gc.get_threshold())
    running = asyncio.create_task(worker.run(), name=f"jobgov-worker-{task_queue}")
    stopping = asyncio.create_task(stop.wait(), name="jobgov-worker-stop")
    try:
        logger.info("jobgov %sworker polling task queue %r on %s", "agent-host " if agent_host else "", task_queue,
                    client.service_client.config.target_host)
        if on_ready is not None:
            on_ready(worker)
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
        if not running.done():
            # Finish the shutdown even when our caller is cancelled: the core must stop cleanly.
            shutdown = asyncio.ensure_future(worker.shutdown())
            try:
                await asyncio.shield(shutdown)
            except asyncio.CancelledError:
                await shutdown
                raise
        with contextlib.suppress(asyncio.CancelledError):
            await running  # re-raises a worker failure (e.g. a poll error it could not recover from)
