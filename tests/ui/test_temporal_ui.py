"""The approver's view: a person finds, reads and decides jobs in the Temporal Web UI.

Headless Chromium (Debian's ``chromium``, through Playwright's ``executable_path``: nothing
downloads a browser; ``make test`` installs the package when it is missing) drives the UI that
ships with the dev server, as a person would: the printed link to jobs awaiting approval, the
job's page, its pending ask in the Current Details, "Send an Update" with ``approve``; then the
same for a budget-paused job and ``resume``; and a wrong request id, refused in one sentence.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from jobgov.client import JobGovClient
from jobgov.configfile import parse_plan_config
from jobgov.devserver import DevServer
from jobgov.run import run_worker
from jobgov.temporal.payloads import JobStatus
from jobgov.testing import FakeAgent, Scenario
from tests.integration.jobs import PRICING

playwright = pytest.importorskip("playwright.async_api", reason="playwright is a test dependency: make install")

pytestmark = pytest.mark.temporal

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest_asyncio.fixture
async def ui(tmp_path: Path) -> AsyncIterator[tuple[DevServer, JobGovClient, str]]:
    """The dev server with its Web UI, a worker, and a client."""
    async with DevServer(port=0, ui_port=0, db=None) as dev:
        queue, stop = f"jobgov-ui-{uuid.uuid4().hex[:8]}", asyncio.Event()
        worker = asyncio.create_task(run_worker(dev.address, task_queue=queue, stop=stop, handle_signals=False))
        try:
            yield dev, await JobGovClient.connect(dev.address), queue
        finally:
            stop.set()
            await asyncio.wait_for(worker, 30)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make test installs it: apt-get install chromium)")
    async with playwright.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def eventually(probe: Callable[[], Awaitable[JobStatus]], predicate: Callable[[JobStatus], bool],
                     timeout: float = 60) -> JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        last = await probe()
        if predicate(last):
            return last
        assert time.monotonic() < deadline, last.model_dump_json(indent=1)
        await asyncio.sleep(0.2)


async def open_job_from(page: Any, list_url: str, workflow_id: str) -> None:
    """Open the filtered list (reloading until visibility lists the job), then the job's page."""
    link = page.get_by_role("link", name=workflow_id, exact=True).first
    deadline = time.monotonic() + 60
    await page.goto(list_url)
    while True:
        try:
            await link.wait_for(timeout=5000)  # the list renders, with the job once visibility has it
            break
        except playwright.TimeoutError:
            assert time.monotonic() < deadline, f"{workflow_id} never listed at {list_url}"
            await page.reload()
    await link.click()
    await page.get_by_role("button", name="More Actions").wait_for()


async def current_details(page: Any, showing: str) -> str:
    """The Current Details as the User Metadata tab renders them (markdown, in a frame of their
    own), once they show ``showing``."""
    await page.get_by_text("User Metadata", exact=True).click()
    body = page.frame_locator("#user-metadata-current-details").locator("body")
    await body.get_by_text(showing).first.wait_for()
    return str(await body.inner_text())


async def send_update(page: Any, name: str, description: str, data: str) -> None:
    """More Actions → Send an Update → pick ``name`` (by its description) → the JSON → Submit."""
    await page.get_by_role("button", name="More Actions").click()
    await page.get_by_role("menuitem", name="Send an Update").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Select an Update").click()
    await page.locator("[role=option]:visible", has_text=description).click()
    await dialog.get_by_role("button", name=name, exact=True).wait_for()
    await dialog.locator(".cm-content").first.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.type(data)
    await dialog.get_by_text("Single JSON payload supported.").click()  # leave the editor: it reformats
    await dialog.get_by_role("button", name="Submit").click()


async def test_an_approver_finds_reads_and_decides_jobs_in_the_ui(
    ui: tuple[DevServer, JobGovClient, str], browser: Any, tmp_path: Path
) -> None:
    dev, jg, queue = ui
    plan = f"ui-{uuid.uuid4().hex[:6]}"
    paused_config = parse_plan_config(PRICING + "budget:\n  job: {usd: 0.005, on_exceed: pause}\n")
    async with (FakeAgent(Scenario().bash("pip install requests").text("Done.")) as asking,
                FakeAgent(Scenario().bash("echo 1").bash("echo 2").bash("echo 3").text("Done.")) as spending):
        await jg.start_job(plan, "asks", asking.base_url, str(tmp_path), prompt="Add a dependency",
                           task_queue=queue, config=parse_plan_config(PRICING))
        await jg.start_job(plan, "spends", spending.base_url, str(tmp_path), prompt="Count to three",
                           task_queue=queue, config=paused_config)
        waiting = await eventually(lambda: jg.job_status("asks", plan), lambda s: bool(s.pending))
        ask = waiting.pending[0]
        await eventually(lambda: jg.job_status("spends", plan), lambda s: s.state == "paused")

        page = await browser.new_page()
        awaiting_url = dev.list_url("awaiting-approval")
        assert awaiting_url is not None
        await open_job_from(page, awaiting_url, waiting.workflow_id)
        text = await current_details(page, ask.id)
        assert "awaiting-approval" in text and ask.id in text and "pip install requests" in text
        assert "\\(" not in text  # amounts read as text, not as maths

        # A wrong id is refused, in one sentence naming it, and nothing is decided.
        await send_update(page, "approve", "Approve a pending ask", '{"request_id": "per_nope"}')
        await page.get_by_text("no pending ask per_nope").first.wait_for()
        assert not (await jg.job_status("asks", plan)).decisions

        await page.reload()
        await page.get_by_role("button", name="More Actions").wait_for()
        await send_update(page, "approve", "Approve a pending ask", f'{{"request_id": "{ask.id}", "by": "ui-test"}}')
        approved = await eventually(lambda: jg.job_status("asks", plan), lambda s: s.state == "completed")
        assert [(d.request_id, d.action, d.actor) for d in approved.decisions] == [(ask.id, "approve", "ui-test")]
        assert [r.reply for r in asking.replies] == ["once"]

        paused_url = dev.list_url("paused")
        assert paused_url is not None
        paused = await jg.job_status("spends", plan)
        await open_job_from(page, paused_url, paused.workflow_id)
        text = await current_details(page, "Paused:")
        assert "Paused:" in text and "exceeded" in text
        await send_update(page, "resume", "Resume a paused job", '{"add_usd": 1, "by": "ui-test"}')
        resumed = await eventually(lambda: jg.job_status("spends", plan), lambda s: s.state == "completed")
        assert resumed.budget is not None and resumed.budget.limit is not None
        assert resumed.budget.limit.usd is not None and resumed.budget.limit.usd > 1
        await page.close()
    await jg.temporal.get_workflow_handle(f"jobgov/{plan}").terminate("test over")
