"""Agent passwords come from the worker's environment (or a file it names), never from inputs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from jobgov.opencode.credentials import AgentCredentials, CredentialsError


def header(auth: httpx.Auth | None) -> str | None:
    if auth is None:
        return None
    request = httpx.Request("GET", "http://agent/")
    return next(auth.auth_flow(request)).headers.get("authorization")


def test_no_password_sends_nothing() -> None:
    assert AgentCredentials.from_environ({}).auth_for("http://127.0.0.1:4096") is None


def test_opencodes_own_variables_apply_to_every_agent() -> None:
    creds = AgentCredentials.from_environ({"OPENCODE_SERVER_PASSWORD": "s3cret"})
    expected = header(httpx.BasicAuth("opencode", "s3cret"))
    assert header(creds.auth_for("http://a:1")) == header(creds.auth_for("http://b:2/")) == expected
    named = AgentCredentials.from_environ({"OPENCODE_SERVER_PASSWORD": "s3cret", "OPENCODE_SERVER_USERNAME": "ci"})
    assert header(named.auth_for("http://a:1")) == header(httpx.BasicAuth("ci", "s3cret"))


def test_a_file_gives_each_agent_its_own(tmp_path: Path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text('["http://10.0.0.5:4096"]\npassword = "five"\n\n["http://10.0.0.6:4096/"]\n'
                    'password = "six"\nusername = "bot"\n')
    creds = AgentCredentials.from_environ({"JOBGOV_AGENT_CREDENTIALS": str(path), "OPENCODE_SERVER_PASSWORD": "all"})
    assert header(creds.auth_for("http://10.0.0.5:4096/")) == header(httpx.BasicAuth("opencode", "five"))
    assert header(creds.auth_for("http://10.0.0.6:4096")) == header(httpx.BasicAuth("bot", "six"))
    assert header(creds.auth_for("http://10.0.0.7:4096")) == header(httpx.BasicAuth("opencode", "all"))
    assert "five" not in repr(creds) and "all" not in repr(creds)


@pytest.mark.parametrize(("text", "message"), [
    ('["http://a:1"]\npassword = \n', "is not valid TOML"),
    ('["a:1"]\npassword = "x"\n', "named by the agent's base URL"),
    ('["http://a:1"]\nusername = "x"\n', 'needs password = "..."'),
    ('["http://a:1"]\npassword = "x"\ntoken = "y"\n', "not token"),
])
def test_a_bad_file_is_refused_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "agents.toml"
    path.write_text(text)
    with pytest.raises(CredentialsError, match=message) as caught:
        AgentCredentials.from_environ({"JOBGOV_AGENT_CREDENTIALS": str(path)})
    assert str(path) in str(caught.value)


def test_a_missing_file_is_refused() -> None:
    with pytest.raises(CredentialsError, match=r"cannot read /nonexistent/agents\.toml"):
        AgentCredentials.from_environ({"JOBGOV_AGENT_CREDENTIALS": "/nonexistent/agents.toml"})
