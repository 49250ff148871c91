"""``jobgov worker --metrics-bind``: one Prometheus endpoint with the SDK's metrics and jobgov's,
scraped after a governed job (an automatic decision, a person's, usage, a state change)."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from pathlib import Path

import httpx
import pytest

from jobgov.client import InputError, JobGovClient
from jobgov.devserver import DevServer
from jobgov.run import run_worker, worker_runtime
from jobgov.testing import FakeAgent, Scenario
from tests.integration.jobs import PRICING, wait_until

pytestmark = pytest.mark.temporal


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total, found = 0.0, False
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total, found = total + float(match.group(2)), True
    assert found, f"no sample {name} {labels}"
    return total


async def test_a_governed_job_shows_in_the_metrics(tmp_path: Path) -> None:
    from jobgov.configfile import parse_plan_config

    port = free_port()
    async with DevServer(port=0, ui_port=None, db=None) as dev:
        queue, stop, plan = f"jobgov-{uuid.uuid4().hex[:8]}", asyncio.Event(), f"m-{uuid.uuid4().hex[:6]}"
        ready: list[object] = []
        worker = asyncio.create_task(run_worker(dev.address, task_queue=queue, stop=stop, handle_signals=False,
                                                on_ready=ready.append, metrics_bind=f"127.0.0.1:{port}"))
        try:
            await wait_until(lambda: bool(ready) or worker.done(), timeout=30)
            assert not worker.done(), worker.exception()
            jg = await JobGovClient.connect(dev.address)
            async with FakeAgent(Scenario().bash("ls").bash("pip install x").text("Done.")) as agent:
                await jg.start_job(plan, "m", agent.base_url, str(tmp_path), prompt="go", task_queue=queue,
                                   config=parse_plan_config(PRICING))
                for _ in range(300):
                    status = await jg.job_status("m", plan)
                    if status.pending:
                        break
                    await asyncio.sleep(0.1)
                await jg.approve("m", status.pending[0].id, plan=plan, by="ann")
                handle = jg.temporal.get_workflow_handle(f"jobgov/{plan}/m")
                await handle.result()
            async with httpx.AsyncClient() as http:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            assert sample(text, "jobgov_asks", action="auto-approve", category="shell_command", actor="policy") == 1
            assert sample(text, "jobgov_asks", action="approve", category="install_packages", actor="ann") == 1
            assert sample(text, "jobgov_auto_decision_latency_count", action="auto-approve") == 1
            final = await jg.job_status("m", plan)
            assert sample(text, "jobgov_tokens", plan=plan, model="fake/fake-model") == final.tokens["total"] > 0
            assert sample(text, "jobgov_cost_usd_sum", plan=plan) == pytest.approx(final.cost_usd)
            assert sample(text, "jobgov_cost_usd_bucket", plan=plan, le="0.01") == final.steps  # USD buckets
            # running, awaiting-approval (the second ask), running again once approved, completed
            entered = {state: sample(text, "jobgov_job_states", state=state)
                       for state in ("running", "awaiting-approval", "completed")}
            assert entered == {"running": 2, "awaiting-approval": 1, "completed": 1}
            assert sample(text, "jobgov_notifications", kind="finished") == 1
            assert sample(text, "temporal_workflow_completed") >= 1  # the SDK's own, on the same endpoint
            await jg.temporal.get_workflow_handle(f"jobgov/{plan}").terminate("test over")
        finally:
            stop.set()
            await asyncio.wait_for(worker, 30)


def test_a_bad_metrics_address_is_refused() -> None:
    with pytest.raises(InputError, match="expected HOST:PORT"):
        worker_runtime("9464")
