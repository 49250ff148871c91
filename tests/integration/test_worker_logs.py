"""What ``jobgov worker`` logs about a job that ends normally and whose agent then goes away (as
Mission Control stops a finished job's server): no warning. The stream, which hears of the job's
end only from a heartbeat, checks the run before it would warn about the lost agent, and stops
quietly; the core's line about finishing an activity of a closed run is logged at INFO. Nor does it
log a line per HTTP request to the agent."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import pytest

from jobgov.client import JobGovClient
from jobgov.devserver import DevServer
from jobgov.run import GC_THRESHOLD
from jobgov.testing import FakeAgent, Scenario

pytestmark = pytest.mark.temporal


async def test_a_normal_job_end_logs_no_warning(tmp_path: Path) -> None:
    queue, plan = f"logs-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:6]}"
    async with DevServer(port=0, ui_port=None, db=None) as dev:
        worker = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("jobgov")), "worker", "--address", dev.address, "--task-queue", queue,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert worker.stdout is not None
        lines: list[str] = []

        async def until(text: str) -> None:
            assert worker.stdout is not None
            async with asyncio.timeout(60):
                while not any(text in line for line in lines):
                    line = (await worker.stdout.readline()).decode(errors="replace")
                    assert line, f"the worker exited with {await worker.wait()}:\n" + "".join(lines)
                    lines.append(line)

        try:
            await until("polling task queue")
            jg = await JobGovClient.connect(dev.address)
            async with FakeAgent(Scenario().bash("ls").text("Done.")) as agent:
                await jg.start_job(plan, "quiet", agent.base_url, str(tmp_path), prompt="go", task_queue=queue)
                result = await jg.temporal.get_workflow_handle(f"jobgov/{plan}/quiet").result()
                assert result["status"]["state"] == "completed"
            # The agent is gone now, with the job.
            await until("the job's run has closed")
            await jg.temporal.get_workflow_handle(f"jobgov/{plan}").terminate("test over")
        finally:
            worker.terminate()
            rest = (await worker.communicate())[0].decode(errors="replace")
        assert await worker.wait() == 0
        logged = ("".join(lines) + rest).splitlines()
        assert [line for line in logged if " WARNING " in line or " ERROR " in line or " WARN " in line] == []
        assert all(" INFO " in line for line in logged if "Activity not found on completion" in line)
        assert [line for line in logged if "HTTP Request:" in line] == []  # httpx's line per request
        assert any("polling task queue" in line for line in logged)  # jobgov's own INFO lines stay
        # By default the worker tunes the collector (jobgov.run.tune_collector), once, and says so.
        tuned = [line for line in logged if "garbage collector tuned:" in line]
        assert len(tuned) == 1 and f"thresholds ({GC_THRESHOLD}, " in tuned[0], tuned
        assert int(tuned[0].split("tuned: ")[1].split(" objects frozen")[0]) > 10_000, tuned  # its modules
