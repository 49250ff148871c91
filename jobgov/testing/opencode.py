"""Install and run a real, isolated, offline ``opencode serve`` for end-to-end tests.

:func:`ensure_opencode` installs the pinned ``opencode-ai`` npm package into a
cache directory once (a file lock keeps parallel test processes from racing).
:class:`OpencodeServer` starts ``opencode serve`` on 127.0.0.1 in a project
directory, with a throw-away ``HOME``/XDG tree, no network, and the ``fake``
provider pointed at a :class:`~jobgov.testing.scripted_model.ScriptedModel`, as
described in PROTOCOL.md "Running it offline"; it stops the whole process group
on exit and keeps the server log in a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from jobgov.testing._service import AsyncService

__all__ = [
    "ASK_ALL",
    "OPENCODE_VERSION",
    "OpencodeError",
    "OpencodeServer",
    "ensure_opencode",
    "opencode_config",
]

#: The opencode release whose protocol PROTOCOL.md records; bump both together.
OPENCODE_VERSION = "1.18.33"
#: Every permission jobgov governs is asked, never decided by opencode itself.
ASK_ALL: dict[str, str] = {
    "edit": "ask",
    "bash": "ask",
    "external_directory": "ask",
    "webfetch": "ask",
}
NPM_TIMEOUT = 600.0
LOCK_TIMEOUT = 900.0


class OpencodeError(RuntimeError):
    """opencode could not be installed or did not start."""


def _binary(cache_dir: Path) -> Path:
    return cache_dir / "node_modules" / ".bin" / "opencode"


def ensure_opencode(cache_dir: Path) -> Path:
    """Install ``opencode-ai@OPENCODE_VERSION`` into ``cache_dir`` if needed; return the binary.

    Idempotent and safe across processes: the install runs under an exclusive
    lock on ``cache_dir/.install.lock`` and is marked complete only after the
    binary reports the pinned version.
    """
    cache_dir = Path(cache_dir).resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    marker = cache_dir / f".installed-{OPENCODE_VERSION}"
    binary = _binary(cache_dir)
    if marker.exists() and binary.exists():
        return binary
    with open(cache_dir / ".install.lock", "w") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:  # bounded: another process installs for at most NPM_TIMEOUT
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() > deadline:
                    msg = f"timed out waiting for the install lock in {cache_dir}"
                    raise OpencodeError(msg) from exc
                time.sleep(0.5)
        try:
            if marker.exists() and binary.exists():  # another process finished meanwhile
                return binary
            _npm_install(cache_dir)
            version = subprocess.run(
                [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
            ).stdout.strip()
            if version != OPENCODE_VERSION:
                raise OpencodeError(
                    f"{binary} --version printed {version!r}, not {OPENCODE_VERSION}"
                )
            marker.write_text(version + "\n")
            return binary
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _npm_install(cache_dir: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise OpencodeError("npm is not on PATH; Node.js >= 20 is needed to install opencode")
    # The platform binary arrives as an optional dependency of opencode-ai.
    command = [
        npm,
        "install",
        "--prefix",
        str(cache_dir),
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        f"opencode-ai@{OPENCODE_VERSION}",
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise OpencodeError(f"npm install timed out after {NPM_TIMEOUT:.0f}s") from exc
    if result.returncode != 0 or not _binary(cache_dir).exists():
        raise OpencodeError(f"npm install failed ({result.returncode}):\n{result.stderr[-4000:]}")


def opencode_config(
    model_base_url: str, permission: dict[str, str] | None = None
) -> dict[str, Any]:
    """PROTOCOL.md's opencode config: only the ``fake`` provider, at ``model_base_url`` (…/v1)."""
    model = {
        "tool_call": True,
        "cost": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75},
        "limit": {"context": 128000, "output": 4096},
    }
    provider = {
        "npm": "@ai-sdk/openai-compatible",
        "options": {"baseURL": model_base_url, "apiKey": "sk-fake"},
        "models": {"fake-model": model},
    }
    return {
        "autoupdate": False,
        "share": "disabled",
        "enabled_providers": ["fake"],
        "model": "fake/fake-model",
        "small_model": "fake/fake-model",
        "provider": {"fake": provider},
        "permission": dict(permission if permission is not None else ASK_ALL),
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OpencodeServer(AsyncService):
    """``async with OpencodeServer(binary, project_dir, model_url) as oc:`` runs ``opencode serve``.

    Args:
        binary: the ``opencode`` executable (see :func:`ensure_opencode`).
        project_dir: the worktree opencode serves (its cwd).
        model_base_url: the OpenAI-compatible base URL, e.g. ``ScriptedModel.openai_base_url``.
        permission: opencode's permission config (default: ask for everything).
        log_path: where stdout/stderr go (default: a new ``jobgov-opencode-*.log`` temp file).
        startup_timeout: how long to wait for ``/global/health``.
        password: protect the server with HTTP Basic auth (``OPENCODE_SERVER_PASSWORD``, user ``opencode``).
    """

    def __init__(
        self,
        binary: Path,
        project_dir: Path,
        model_base_url: str,
        *,
        permission: dict[str, str] | None = None,
        log_path: Path | None = None,
        startup_timeout: float = 90.0,
        password: str | None = None,
    ) -> None:
        self.password = password
        self.binary = Path(binary)
        self.project_dir = Path(project_dir)
        self.config = opencode_config(model_base_url, permission)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self._home = Path(tempfile.mkdtemp(prefix="jobgov-opencode-"))
        if log_path is None:
            # Outside the temporary home, which stop() deletes: the log matters after a failure.
            fd, name = tempfile.mkstemp(prefix="jobgov-opencode-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = Path(log_path)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The isolated environment: a fresh home, no autoupdate, no downloads, offline npm."""
        home = self._home
        models = home / "models.json"
        models.write_text("{}")
        # Start from almost nothing so no real provider key or user config leaks in.
        env = {
            k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
        }
        env.update(
            HOME=str(home),
            XDG_DATA_HOME=str(home / "data"),
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_CACHE_HOME=str(home / "cache"),
            XDG_STATE_HOME=str(home / "state"),
            OPENCODE_DISABLE_AUTOUPDATE="1",
            OPENCODE_DISABLE_MODELS_FETCH="1",
            OPENCODE_MODELS_PATH=str(models),
            OPENCODE_DISABLE_SHARE="1",
            OPENCODE_DISABLE_LSP_DOWNLOAD="1",
            OPENCODE_DISABLE_CLAUDE_CODE="1",
            OPENCODE_DISABLE_EXTERNAL_SKILLS="1",
            OPENCODE_CONFIG_CONTENT=json.dumps(self.config),
            npm_config_offline="true",
        )
        if self.password is not None:
            env["OPENCODE_SERVER_PASSWORD"] = self.password
        return env

    async def start(self) -> None:
        """Start the server and wait until ``/global/health`` reports healthy. A restart (after
        :meth:`crash`) keeps the port and the home, so the agent's sessions are still there."""
        self.port = self.port or _free_port()
        command = [str(self.binary), "serve", "--hostname", "127.0.0.1", "--port", str(self.port)]
        # A local file: opening it does not block the loop in any way that matters.
        with open(self.log_path, "ab") as log:
            # A new session (process group) so stop() also ends opencode's children.
            self.process = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.project_dir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        await self._wait_healthy()

    async def _wait_healthy(self) -> None:
        # PROTOCOL.md finding 8: a request to a booting server can hang, so every
        # probe has its own short timeout and the probe is retried until the deadline.
        deadline = time.monotonic() + self.startup_timeout
        timeout = httpx.Timeout(3.0, connect=1.0)
        auth = httpx.BasicAuth("opencode", self.password) if self.password is not None else None
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout, auth=auth) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.returncode is not None:
                    raise OpencodeError(
                        f"opencode exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get("/global/health")
                    if response.status_code == 200 and response.json().get("healthy") is True:
                        return
                await asyncio.sleep(0.25)
        raise OpencodeError(
            f"opencode not healthy after {self.startup_timeout:.0f}s:\n{self.log_tail()}"
        )

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def crash(self) -> None:
        """SIGKILL the server's process group, as a crash or an OOM kill would; the home is kept
        (sessions, messages) for :meth:`start` to restart it on the same port."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()

    async def stop(self) -> None:
        """Terminate the process group (SIGTERM, SIGKILL after 10 s); remove the temporary home."""
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                try:
                    await asyncio.wait_for(process.wait(), wait)
                    break
                except TimeoutError:
                    continue
        # The group may outlive its leader (e.g. a bash tool child): make sure it is gone.
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(self._home, ignore_errors=True)
