"""Passwords of agents: ``opencode serve`` protects itself with HTTP Basic auth when started with
``OPENCODE_SERVER_PASSWORD`` (user ``opencode``, or ``OPENCODE_SERVER_USERNAME``).

Credentials come from the environment of the process that talks to agents (the worker, and
``jobgov job start`` for its start check), never from workflow inputs: inputs are recorded in
history and shown in the UI. Two sources:

- ``OPENCODE_SERVER_PASSWORD`` (and ``OPENCODE_SERVER_USERNAME``), the variables opencode itself
  reads: one password for every agent;
- ``JOBGOV_AGENT_CREDENTIALS``, a TOML file with one table per agent base URL, for many agents
  with different passwords; an agent it names uses its entry, the others the variables::

      ["http://10.0.0.5:4096"]
      password = "..."
      username = "opencode"   # optional
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["DEFAULT_USERNAME", "AgentCredentials", "CredentialsError"]

#: The user opencode expects when ``OPENCODE_SERVER_USERNAME`` is not set.
DEFAULT_USERNAME = "opencode"


class CredentialsError(ValueError):
    """The credentials file cannot be used (the message names it, and the line or entry)."""


@dataclass(frozen=True)
class AgentCredentials:
    """Basic-auth credentials by agent base URL, and one pair for every other agent."""

    default: tuple[str, str] | None = None
    """``(username, password)`` for agents the file does not name (``None``: no password)."""
    by_url: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> AgentCredentials:
        """From ``OPENCODE_SERVER_PASSWORD``/``OPENCODE_SERVER_USERNAME`` and ``JOBGOV_AGENT_CREDENTIALS``.

        Raises:
            CredentialsError: The file named by ``JOBGOV_AGENT_CREDENTIALS`` cannot be read.
        """
        env = os.environ if environ is None else environ
        password = env.get("OPENCODE_SERVER_PASSWORD")
        default = (env.get("OPENCODE_SERVER_USERNAME") or DEFAULT_USERNAME, password) if password else None
        path = env.get("JOBGOV_AGENT_CREDENTIALS")
        return cls(default=default, by_url=_read_file(Path(path)) if path else {})

    def auth_for(self, agent_url: str) -> httpx.Auth | None:
        """The Basic auth to send to the agent at ``agent_url`` (``None``: none)."""
        pair = self.by_url.get(_key(agent_url), self.default)
        return httpx.BasicAuth(*pair) if pair is not None else None

    def __repr__(self) -> str:  # never print a password, whatever logs this object
        return f"AgentCredentials(default={'set' if self.default else None}, agents={sorted(self.by_url)})"


def _key(agent_url: str) -> str:
    return agent_url.rstrip("/")


def _read_file(path: Path) -> dict[str, tuple[str, str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CredentialsError(f"JOBGOV_AGENT_CREDENTIALS: cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"JOBGOV_AGENT_CREDENTIALS: {path} is not valid TOML: {exc}") from None
    entries: dict[str, tuple[str, str]] = {}
    for url, entry in data.items():
        where = f"JOBGOV_AGENT_CREDENTIALS: {path}: [{url!r}]"
        if not url.startswith(("http://", "https://")):
            raise CredentialsError(f"{where}: a table is named by the agent's base URL (http://host:port)")
        if not isinstance(entry, dict) or not isinstance(entry.get("password"), str) or not entry["password"]:
            raise CredentialsError(f"{where}: needs password = \"...\"")
        username = entry.get("username", DEFAULT_USERNAME)
        unknown = set(entry) - {"password", "username"}
        if not isinstance(username, str) or not username or unknown:
            raise CredentialsError(f"{where}: only password and username (a non-empty string) are allowed"
                                   + (f", not {', '.join(sorted(unknown))}" if unknown else ""))
        entries[_key(url)] = (username, entry["password"])
    return entries
