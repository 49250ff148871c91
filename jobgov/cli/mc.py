"""``jobgov mc watch``: govern the serve-mode jobs Mission Control launches."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from jobgov import names
from jobgov.cli._common import fail, load_config_or_exit
from jobgov.cli.jobs import EXIT_RUNTIME, AddressOpt, NamespaceOpt

app = typer.Typer(help="Mission Control's own jobs, governed by jobgov.", no_args_is_help=True)


@app.command("watch")
def watch(
    state_dir: Annotated[Path | None, typer.Option(
        "--state-dir", help="Mission Control's data directory (every <repo>/state in it), or one repository's "
                            "state directory. Default: ~/.local/share/opencode-mission-control.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="The plan config (YAML) for every job; default: each job's Mission Control "
                               "permissionPolicy, translated (job over plan over global).")] = None,
    task_queue: Annotated[str, typer.Option("--task-queue", envvar="JOBGOV_TASK_QUEUE",
                                            help="The jobgov workers' task queue.")] = names.DEFAULT_TASK_QUEUE,
    agent_queue: Annotated[str | None, typer.Option(
        "--agent-queue", help="The task queue of the workers on the agents' host (jobgov worker --agent-queue).")
    ] = None,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between reads of the state.")] = 1.0,
    no_agent_check: Annotated[bool, typer.Option(
        "--no-agent-check", metavar="", help="Start jobs without checking that their agent answers here.")] = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Govern every running serve-mode job of Mission Control until Ctrl-C or SIGTERM: one governed
    job per Mission Control job, ended when Mission Control marks it done or removes it."""
    from jobgov.client import InputError, JobGovClient, JobGovError
    from jobgov.missioncontrol import DEFAULT_ROOT, Watcher
    from jobgov.run import stop_on_signals

    plan_config = load_config_or_exit(config) if config is not None else None
    root = (state_dir or DEFAULT_ROOT).expanduser().absolute()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def go() -> None:
        jg = await JobGovClient.connect(address, namespace)
        stop = asyncio.Event()
        stop_on_signals(stop)
        await Watcher(jg, root, config=plan_config, task_queue=task_queue, agent_queue=agent_queue,
                      check_agent=not no_agent_check, interval=interval).run(stop)

    try:
        asyncio.run(go())
    except InputError as exc:
        fail(str(exc))
    except JobGovError as exc:
        fail(str(exc), EXIT_RUNTIME)
