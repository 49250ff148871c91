"""Paths and small helpers shared by the test suites."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Real streams captured from ``opencode serve`` 1.18.33, its OpenAPI document and the
#: protocol notes; kept inside the repository so a fresh clone tests itself.
OPENCODE_FIXTURES = ROOT / "tests" / "fixtures" / "opencode"
CAPTURES = OPENCODE_FIXTURES / "captures"
SHELL_FIXTURES = ROOT / "tests" / "fixtures" / "shell"
#: Mission Control state directories (``<repo>/state/{jobs,plan,config}.json``).
MC_FIXTURES = ROOT / "tests" / "fixtures" / "missioncontrol"
#: The seed policy the closed-world judge is measured under (that of examples/plan.yaml).
SEED_POLICY = """
permissions:
  file_edit: {inside_worktree: auto-approve, outside_worktree: deny}
  shell_command: {inside_worktree: auto-approve, outside_worktree: ask-user}
  network_access: deny
  install_packages: ask-user
rules:
  - {category: shell_command, match: "git push*", action: deny}
"""


@dataclass(frozen=True)
class Tree:
    """The worktree ``wt`` (with ``src/`` and ``escape`` -> ``outside/``) and the agent's ``home``."""

    wt: Path
    outside: Path
    home: Path


def make_tree(root: Path) -> Tree:
    """A worktree with a symlink ``escape`` to a sibling ``outside/``, and a sibling ``home``."""
    wt, outside, home = root / "wt", root / "outside", root / "home"
    (wt / "src").mkdir(parents=True)
    (wt / "src" / "a.py").write_text("print('hello')\n")
    outside.mkdir()
    (outside / "secret").write_text("s3cret\n")
    home.mkdir()
    (home / ".bashrc").write_text("# rc\n")
    (wt / "escape").symlink_to(outside, target_is_directory=True)
    return Tree(wt=wt, outside=outside, home=home)



@contextlib.asynccontextmanager
async def answering_true() -> AsyncIterator[tuple[str, list[asyncio.Event]]]:
    """An HTTP server on 127.0.0.1 answering every request ``true``; yields its URL and one event
    per connection accepted, set once the client has closed that connection."""
    closed: list[asyncio.Event] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gone = asyncio.Event()
        closed.append(gone)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
                length = head.partition("\r\ncontent-length:")[2].split("\r\n")[0].strip()
                await reader.readexactly(int(length or 0))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\ntrue")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            gone.set()  # the client closed the connection
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}", closed
    finally:
        srv.close()
        await srv.wait_closed()
