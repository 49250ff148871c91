"""A namespace chosen only through Temporal's client config file: the worker and the client (and
the CLI, in a subprocess) find it there, with no address or namespace given anywhere else."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from jobgov.client import JobGovClient
from jobgov.devserver import DevServer
from jobgov.run import run_worker
from jobgov.temporal.payloads import JobResult
from jobgov.testing import FakeAgent, Scenario
from tests.integration.jobs import wait_until

pytestmark = pytest.mark.temporal


async def test_a_profile_file_alone_picks_the_server_and_namespace(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async with DevServer(port=0, ui_port=None, db=None, namespace="team-a") as dev:
        profiles = tmp_path / "temporal.toml"
        profiles.write_text(f'[profile.default]\naddress = "{dev.address}"\n\n'
                            f'[profile.ops]\naddress = "{dev.address}"\nnamespace = "team-a"\n')
        monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(profiles))
        monkeypatch.setenv("TEMPORAL_PROFILE", "ops")
        queue, stop, plan = f"jobgov-{uuid.uuid4().hex[:8]}", asyncio.Event(), f"p-{uuid.uuid4().hex[:6]}"
        ready: list[object] = []
        worker = asyncio.create_task(run_worker(task_queue=queue, stop=stop, handle_signals=False,
                                                on_ready=ready.append))
        try:
            await wait_until(lambda: bool(ready) or worker.done(), timeout=30)
            assert not worker.done(), worker.exception()
            jg = await JobGovClient.connect()
            assert jg.temporal.namespace == "team-a"
            async with FakeAgent(Scenario().bash("ls").text("Done.")) as agent:
                await jg.start_job(plan, "fix", agent.base_url, str(tmp_path), prompt="go", task_queue=queue)
                handle = jg.temporal.get_workflow_handle(f"jobgov/{plan}/fix", result_type=JobResult)
                result = await handle.result()
            assert result.status.state == "completed"
            # The CLI, in a process of its own, reads the same profile: it lists the job.
            cli = subprocess.run([str(Path(sys.executable).with_name("jobgov")), "jobs", "--plan", plan, "--json"],
                                 capture_output=True, text=True, timeout=60, check=False)
            assert cli.returncode == 0, cli.stderr
            assert [row["job"] for row in json.loads(cli.stdout)["jobs"]] == ["fix"]
            # ... and the default namespace of the same server holds none of it.
            other = await JobGovClient.connect(dev.address, "default")
            assert not await other.list_jobs(plan)
            await jg.temporal.get_workflow_handle(f"jobgov/{plan}").terminate("test over")
        finally:
            stop.set()
            await asyncio.wait_for(worker, 30)
