"""Many jobs on one worker process: ``jobgov worker`` with its defaults, as a team runs it (and,
for comparison, on two such processes polling the same task queue: Temporal's way to scale out).

Three processes besides the dev server, as in real use: the agents (``bench.agents``, many fake
agents in one process, each paced at ``rate`` asks a second, in plans of ten jobs), one ``jobgov worker`` subprocess
with its default options, and this process, which starts the jobs and, at the same time, sends
bare signal RPCs to a workflow that only counts them (the floor a decision's one durable signal
costs, under the same load). Latency is from the agent emitting ``permission.asked`` to the
agent receiving the reply. Worker CPU and RSS are read from ``/proc`` for the worker processes
only (summed when there are two); a stream restart is a stream activity whose last attempt was not its first. The CPU of
every process of the run (the dev server, the agents, this process with its signal floor) is
read from ``/proc`` over the same span: the machine's share they leave the worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from bench import compile_bytecode, policy, show
from bench.sink import Sink
from jobgov import names
from tests.conftest import start_dev_env
from tests.integration.jobs import start_job

#: Events a scripted bash step emits besides its ask (message and part updates, the step's finish).
_EVENTS_PER_STEP = 10
JOBS_PER_PLAN = 10
#: Job starts in flight at once. 50 at once (2026-12-01, deliveries every 10 s) swamped the worker with 1,000 new jobs:
#: some jobs' first activities waited over their 2-minute start bound and the jobs failed. One at a
#: time, a start waits for the server's answer, which paces them at the rate the worker takes them.
STARTS_AT_ONCE = 1
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _dev_servers() -> list[int]:
    """The dev server the SDK started: this process's child running ``temporal server start-dev``."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(OSError):  # gone already
                if b"start-dev" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
    return found


def _machine_cpu(workers: list[int], agents: int) -> dict[str, float]:
    """CPU seconds so far of each process of the run, by role; this process counts its own."""
    return {"dev server": _cpu_seconds_of(_dev_servers()), "agents": _cpu_seconds(agents),
            "worker": _cpu_seconds_of(workers), "bench": time.process_time()}


def _rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE / 2**20


def _cpu_seconds_of(pids: list[int]) -> float:
    return sum(_cpu_seconds(pid) for pid in pids)


def _rss_mb_of(pids: list[int]) -> float:
    return sum(_rss_mb(pid) for pid in pids)


async def _signal_floor(client: Client, rate: float, done: asyncio.Event) -> list[float]:
    """Bare signal RPCs at ``rate`` a second until ``done``: the floor under the same load.

    A new sink every 1,000 signals: Temporal caps the signals one workflow run may receive.
    """
    task_queue = f"sink-{uuid.uuid4()}"
    times: list[float] = []
    async with Worker(client, task_queue=task_queue, workflows=[Sink]):
        while not done.is_set():
            handle = await client.start_workflow(Sink.run, id=f"sink-{uuid.uuid4()}", task_queue=task_queue)
            for _ in range(1000):
                if done.is_set():
                    break
                t0 = time.perf_counter()
                await handle.signal(Sink.poke)
                times.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(1 / rate)
            await handle.terminate("done")
    return times


async def _worker(address: str, task_queue: str, max_jobs: int | None = None, options: Sequence[str] = (),
                  agent_queue: str | None = None) -> asyncio.subprocess.Process:
    """Start ``jobgov worker`` (its defaults, or ``--max-jobs`` and ``options``; with ``agent_queue``,
    an agent-host worker of that queue) and wait for its polling line."""
    exe = [str(Path(sys.executable).with_name("jobgov"))]
    if profile := os.environ.get("BENCH_PROFILE"):  # cProfile the worker's main thread into this file
        exe = [sys.executable, "-m", "bench.profile_worker", profile]
    proc = await asyncio.create_subprocess_exec(
        *exe, "worker", "--address", address, "--task-queue", task_queue,
        *(["--max-jobs", str(max_jobs)] if max_jobs is not None else []),
        *options,
        *(["--agent-queue", agent_queue] if agent_queue is not None else []),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    while b"polling task queue" not in (line := await proc.stderr.readline()):
        if not line:
            raise RuntimeError(f"jobgov worker exited with {await proc.wait()} before polling")
    return proc


async def _drain(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while line := await stream.readline():
        text = line.decode(errors="replace")
        if " WARNING " in text or " ERROR " in text:
            lines.append(text.rstrip())


async def _stream_restarts(client: Client, workflow_ids: list[str]) -> int:
    restarts = 0
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        scheduled: set[int] = set()
        for e in history.events:
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                if e.activity_task_scheduled_event_attributes.activity_type.name == names.ACTIVITY_STREAM_EVENTS:
                    scheduled.add(e.event_id)
            elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                attrs = e.activity_task_started_event_attributes
                if attrs.scheduled_event_id in scheduled:
                    restarts += attrs.attempt - 1
    return restarts


def _reason(error: BaseException) -> str:
    """The innermost cause of a job's failure, in one line, its agent's URL left out (so that
    jobs failing alike count as one reason)."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = re.sub(r"https?://\S+", "<agent>", f"{type(error).__name__}: {error}")
    return text.split("\n")[0][:200]


def _all_running(samples: list[tuple[float, float]], timings: list[list[tuple[float, float]]]) -> tuple[float, int, float]:
    """Worker CPU seconds, asks replied and seconds while every job ran: from the last job's first
    reply to the first job's last one (``0`` asks: no such moment)."""
    firsts = [min(r for _, r in job) for job in timings if job]
    lasts = [max(r for _, r in job) for job in timings if job]
    if not firsts or len(firsts) < len(timings):
        return 0.0, 0, 0.0
    inside = [(t, c) for t, c in samples if max(firsts) <= t <= min(lasts)]
    if len(inside) < 2:
        return 0.0, 0, 0.0
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return c1 - c0, sum(1 for job in timings for _, r in job if t0 <= r <= t1), t1 - t0


def _middle(samples: list[tuple[float, float]], timings: list[list[tuple[float, float]]]) -> tuple[float, int]:
    """Worker CPU seconds and asks replied over the middle half of the replies (from the 25th to
    the 75th percentile reply): mostly running jobs, less of the starts and ends around them."""
    replies = sorted(r for job in timings for _, r in job)
    if len(replies) < 4:
        return 0.0, 0
    start, end = replies[len(replies) // 4], replies[3 * len(replies) // 4]
    inside = [(t, c) for t, c in samples if start <= t <= end]
    if len(inside) < 2:
        return 0.0, 0
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return c1 - c0, sum(1 for r in replies if t0 <= r <= t1)


async def _running_jobs(client: Client, task_queue: str) -> int:
    """Jobs of this run still running (their plans run on: they are not counted)."""
    query = f"TaskQueue = '{task_queue}' AND WorkflowType = '{names.JOB_WORKFLOW}' AND ExecutionStatus = 'Running'"
    return (await client.count_workflows(query)).count


async def _queued(client: Client, task_queue: str) -> int:
    """Jobs of this run whose ``JobGovState`` search attribute says ``queued`` now."""
    query = f"TaskQueue = '{task_queue}' AND JobGovState = 'queued' AND ExecutionStatus = 'Running'"
    return (await client.count_workflows(query)).count


async def main(jobs: int = 100, asks: int = 20, rate: float = 1.0, max_jobs: int | None = None,
               processes: int = 1, options: Sequence[str] = (), agent_host: bool = False) -> dict[str, str]:
    """One load run. ``options``: more options of every ``jobgov worker``. ``agent_host``: the jobs'
    agent-side activities (their streams, replies, prompts and aborts) run in a second process, an
    agent-host ``jobgov worker --agent-queue``, beside each of the ``processes`` workers that run
    the workflows."""
    speed = policy.yardstick()  # before anything of the run starts
    env = await start_dev_env()
    task_queue = f"load-{uuid.uuid4()}"
    agent_queue = f"{task_queue}-agent" if agent_host else None
    agents = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.agents", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26,
        cwd=Path(__file__).parent.parent)
    assert agents.stdin is not None and agents.stdout is not None
    workers: list[asyncio.subprocess.Process] = []
    warnings: list[str] = []
    try:
        spec = {"jobs": jobs, "asks": asks, "event_delay": 1 / rate / _EVENTS_PER_STEP}
        agents.stdin.write(json.dumps(spec).encode() + b"\n")
        urls = json.loads(await agents.stdout.readline())
        for _ in range(processes):
            workers.append(await _worker(env.client.service_client.config.target_host, task_queue, max_jobs,
                                         options))
            if agent_queue is not None:
                workers.append(await _worker(env.client.service_client.config.target_host, agent_queue, max_jobs,
                                             options, agent_queue=agent_queue))
        drains = [asyncio.create_task(_drain(w.stderr, warnings)) for w in workers if w.stderr is not None]
        pids = [w.pid for w in workers]
        machine0 = _machine_cpu(pids, agents.pid)
        cpu0, rss0 = machine0["worker"], _rss_mb_of(pids)
        peak = rss0
        samples = [(time.monotonic(), cpu0)]
        done = asyncio.Event()
        floor = asyncio.create_task(_signal_floor(env.client, 100, done))
        started = time.perf_counter()
        # Plans of ten jobs, as teams run them (each plan is a workflow of its own).
        plans = [f"plan-{uuid.uuid4().hex[:8]}" for _ in range(0, jobs, JOBS_PER_PLAN)]
        starting = asyncio.Semaphore(STARTS_AT_ONCE)

        start_times: dict[int, float] = {}

        async def start(n: int, url: str) -> Any:
            async with starting:
                start_times[n] = time.monotonic()  # the agents' clock: monotonic, shared by every process
                return await start_job(env.client, task_queue, url, job=f"job-{n}", plan=plans[n // JOBS_PER_PLAN],
                                       agent_queue=agent_queue)

        handles = await asyncio.gather(*(start(n, url) for n, url in enumerate(urls)))
        all_started = time.perf_counter() - started
        # The jobs' ends are watched with one visibility count a tick, not a result long poll per job:
        # 1,000 of those cost the dev server up to 400 history polls a second, a load no team adds.
        queued_peak, running = 0, len(handles)
        while running:
            peak = max(peak, _rss_mb_of(pids))
            samples.append((time.monotonic(), _cpu_seconds_of(pids)))
            if max_jobs is not None:
                queued_peak = max(queued_peak, await _queued(env.client, task_queue))
            await asyncio.sleep(0.5)
            running = await _running_jobs(env.client, task_queue)
        elapsed = time.perf_counter() - started
        outcomes = await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)  # a failure is a figure
        machine = {role: seconds - machine0[role] for role, seconds in _machine_cpu(pids, agents.pid).items()}
        cpu = machine["worker"]
        done.set()
        signal_ms = await floor
        agents.stdin.write(b"report\n")
        report: dict[str, Any] = json.loads(await agents.stdout.readline())
        restarts = await _stream_restarts(env.client, [h.id for h in handles])
        for w in workers:
            w.terminate()
            await w.wait()
        await asyncio.gather(*drains)
    finally:
        for w in workers:
            if w.returncode is None:
                w.kill()
                await w.wait()
        if agents.returncode is None:
            agents.stdin.close()
            await agents.wait()
        await env.shutdown()
    after = policy.yardstick()  # every process of the run has ended
    timings: list[list[tuple[float, float]]] = report["timings"]
    latencies = [(replied - asked) * 1000 for job in timings for asked, replied in job]
    steady_cpu, steady_asks = _middle(samples, timings)
    full_cpu, full_asks, full_seconds = _all_running(samples, timings)
    completed = sum(1 for r in outcomes if not isinstance(r, BaseException) and r.status.state == "completed")
    failures = collections.Counter(_reason(r) for r in outcomes if isinstance(r, BaseException))
    states = collections.Counter(str(r.status.state) for r in outcomes if not isinstance(r, BaseException))
    p50, p99, sig99 = statistics.median(latencies), _p(latencies, 99), _p(signal_ms, 99)
    first = [min(a for a, _ in job) - start_times[n] for n, job in enumerate(timings) if job]
    last = [max(r for _, r in job) - start_times[n] for n, job in enumerate(timings) if job]
    chosen = [f"--max-jobs {max_jobs}"] * (max_jobs is not None)
    chosen += [" ".join(options)] * bool(options)
    named = ", ".join(chosen) or "defaults"
    who = "one `jobgov worker`" if processes == 1 else f"{processes} `jobgov worker` processes"
    if agent_host:
        who += " and, for the agent-side activities, one `jobgov worker --agent-queue` each"
    title = f"load: {jobs} jobs x {asks} asks at {rate:g} asks/s each, {who} ({named})"
    figures = {
        "jobs, asks": f"{completed}/{jobs} jobs completed, {len(latencies)}/{report['asked']} asks replied "
                      f"in {elapsed:.0f} s (all started in {all_started:.0f} s, {STARTS_AT_ONCE} at a time); "
                      f"{restarts} stream restarts; {len(warnings)} worker warnings",
        "auto-decision latency (ask -> reply)": f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        "a job's start to its first ask, and to its last reply": (
            f"p50 {statistics.median(first):.1f} s, p99 {_p(first, 99):.1f} s; "
            f"p50 {statistics.median(last):.1f} s, p99 {_p(last, 99):.1f} s"),
        "bare signal RPC at 100/s (same run)": f"p50 {statistics.median(signal_ms):.1f} ms, p99 {sig99:.1f} ms; "
                                               f"auto p99 / signal p99 = {p99 / sig99:.2f}",
        "worker CPU per ask, middle half of the run": f"{steady_cpu / max(steady_asks, 1) * 1000:.2f} ms "
                                                      f"({steady_asks} asks)",
        "worker CPU per ask, every job running": (
            f"{full_cpu / full_asks * 1000:.2f} ms ({full_asks} asks in {full_seconds:.0f} s)" if full_asks else
            "no moment had every job running"),
        "worker CPU per ask, whole run": f"{cpu / max(len(latencies), 1) * 1000:.2f} ms ({cpu:.1f} s CPU in "
                                         f"{elapsed:.0f} s, job starts and ends included)",
        "CPU of every process, same span": (
            ", ".join(f"{role} {seconds:.1f} s" for role, seconds in machine.items())
            + f" (this process: the job starts and the signal floor): {sum(machine.values()) / elapsed:.2f} of "
              f"{os.cpu_count()} cores busy"),
        "worker RSS": f"{rss0:.0f} MB idle, {peak:.0f} MB peak: {(peak - rss0) / jobs:.3f} MB per job",
        "the machine (the policy benchmark's normalise p50, alone, before and after the run)": (
            f"{speed:.0f} us, {after:.0f} us"),
    }
    if set(states) - {"completed"}:
        figures["jobs ended"] = ", ".join(f"{count} {state}" for state, count in states.most_common())
    if failures:
        figures["jobs failed"] = f"{sum(failures.values())}: " + "; ".join(
            f"{count} x {reason}" for reason, count in failures.most_common(3))
    if max_jobs is not None:
        figures["jobs beyond --max-jobs"] = (f"{max(jobs - max_jobs, 0)}; at most {queued_peak} shown `queued` at "
                                             "once (JobGovState, sampled every 0.5 s)")
    if dump := os.environ.get("BENCH_WARNINGS"):
        Path(dump).write_text("\n".join(warnings))
    if dump := os.environ.get("BENCH_TIMINGS"):  # every ask's (asked, replied), by job, and each job's start
        Path(dump).write_text(json.dumps({"timings": timings, "starts": start_times}))
    shown = show(title, figures)
    for line in warnings[:5]:  # under the run's own title: the first few, in the order logged
        print(f"  worker: {line}")
    return shown


def run() -> None:
    asyncio.run(main())
    asyncio.run(main(processes=2))  # the same load on two worker processes: how far scaling out goes here
    asyncio.run(main(jobs=1000, asks=4, rate=0.2))
    # A full worker: 20 jobs more than it holds wait, queued, and do not slow the 100 it runs.
    asyncio.run(main(jobs=120, asks=20, rate=1.0, max_jobs=100))


def run_sustained() -> None:
    """1,000 jobs of 20 asks at 0.2 asks/s (``python -m bench load1000``, run apart: about 8 minutes).

    The 1,000-job run of :func:`run` asks 4 times a job, so its figures are mostly jobs starting
    and ending: no moment has all 1,000 running. Jobs of 20 asks run long enough for the worker to
    carry the load the target names (200 asks a second) for minutes.
    """
    asyncio.run(main(jobs=1000, asks=20, rate=0.2))


if __name__ == "__main__":
    # Job counts; "120/100": 120 jobs on a worker with --max-jobs 100; "100x2": 100 jobs on two
    # workers; "1000@20": 20 asks a job (by default 20 up to 200 jobs, else 4). "--agent-host" runs
    # the jobs' agent-side activities in an agent-host `jobgov worker --agent-queue` beside each worker;
    # any other "--OPTION VALUE" (--workflow-tasks 4, --gc-threshold 0) goes to every `jobgov worker`.
    args = sys.argv[1:]
    agent_host = "--agent-host" in args  # the agent-side activities in a process of their own
    if agent_host:
        args.remove("--agent-host")
    options: list[str] = []
    while any(arg.startswith("--") for arg in args):
        at = next(i for i, arg in enumerate(args) if arg.startswith("--"))
        options += args[at:at + 2]
        del args[at:at + 2]
    which = args or ["100"]
    compile_bytecode()
    for arg in which:
        arg, _, asks = arg.partition("@")
        n, _, limit = arg.partition("/")
        n, _, processes = n.partition("x")
        count = int(n)
        asyncio.run(main(jobs=count, asks=int(asks) if asks else 20 if count <= 200 else 4,
                         rate=1.0 if count <= 200 else 0.2, max_jobs=int(limit) if limit else None,
                         processes=int(processes or 1), options=options, agent_host=agent_host))
    sys.stdout.flush()
    os._exit(0)
