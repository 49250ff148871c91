"""Mission Control's state directory, written as Mission Control writes it, for the watcher's tests."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from jobgov.missioncontrol import Watcher
from jobgov.testing import default_worktree

POLICY = {"permissions": {"fileEdit": {"insideWorktree": "auto-approve", "outsideWorktree": "deny"},
                          "shellCommand": {"insideWorktree": "auto-approve", "outsideWorktree": "deny"},
                          "networkAccess": "deny", "installPackages": "deny", "mcpTools": "ask-user"}}


#: Mission Control's own default policy (what a plan without one of its own gets).
MC_DEFAULT_POLICY = {"permissions": {"fileEdit": {"insideWorktree": "auto-approve", "outsideWorktree": "deny"},
                                     "shellCommand": {"insideWorktree": "auto-approve", "outsideWorktree": "ask-user"},
                                     "networkAccess": "deny", "installPackages": "ask-user", "mcpTools": "auto-approve"}}


class McState:
    """One repository's Mission Control state directory, written as Mission Control does (a
    temporary file renamed over the old one)."""

    def __init__(self, root: Path, plan_id: str, policy: dict[str, Any] = POLICY) -> None:
        self.dir = root / "repo" / "state"
        self.dir.mkdir(parents=True)
        self.plan_id = plan_id
        self.jobs: list[dict[str, Any]] = []
        self._write("plan.json", {"id": plan_id, "name": "p", "mode": "autopilot", "status": "running",
                                  "jobs": [], "permissionPolicy": policy})

    def _write(self, name: str, data: object) -> None:
        tmp = self.dir / f"{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, self.dir / name)

    def add(self, name: str, agent_url: str, session_id: str, worktree: str | None = None) -> dict[str, Any]:
        job = {"id": str(uuid.uuid4()), "name": name, "worktreePath": worktree or default_worktree(), "branch": f"mc/{name}",
               "tmuxTarget": f"mc-{name}", "placement": "session", "status": "running", "prompt": "Do the task.",
               "mode": "vanilla", "createdAt": "2026-12-01T10:00:00.000Z", "planId": self.plan_id,
               "port": int(agent_url.rsplit(":", 1)[1]), "serverUrl": agent_url, "remoteSessionID": session_id}
        self.jobs.append(job)
        self.save()
        return job

    def save(self) -> None:
        self._write("jobs.json", {"version": 3, "jobs": self.jobs, "updatedAt": "2026-12-01T10:00:01.000Z"})


async def launch(base_url: str, text: str = "go") -> str:
    """What Mission Control does before it writes the job: a session, its prompt running."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        session_id: str = (await http.post("/session", json={})).json()["id"]
        await http.post(f"/session/{session_id}/prompt_async", json={"parts": [{"type": "text", "text": text}]})
    return session_id


async def sync_until(watcher: Watcher, done: Callable[[], bool], passes: int = 300) -> None:
    for _ in range(passes):
        await watcher.sync()
        if done():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached after {passes} passes; the watcher says {watcher.said()}")
