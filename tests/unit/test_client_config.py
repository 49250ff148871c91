"""Where the client and the worker connect: Temporal's client config, then the flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobgov.client import InputError
from jobgov.client.connection import connect_options

PROFILES = """
[profile.default]
address = "temporal.internal:7233"
namespace = "team-a"

[profile.cloud]
address = "team-a.abc12.tmprl.cloud:7233"
namespace = "team-a.abc12"
api_key = "secret-key"
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILES)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(path))
    return path


def test_no_config_means_the_local_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
    assert connect_options() == {"target_host": "localhost:7233", "namespace": "default"}


def test_the_default_profile_is_used(config_file: Path) -> None:
    assert connect_options() == {"target_host": "temporal.internal:7233", "namespace": "team-a"}


def test_a_cloud_profile_brings_its_api_key_and_tls(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_PROFILE", "cloud")
    options = connect_options()
    assert options["target_host"] == "team-a.abc12.tmprl.cloud:7233" and options["namespace"] == "team-a.abc12"
    assert options.get("api_key") == "secret-key" and options.get("tls") is True


def test_variables_override_the_file_and_flags_override_both(config_file: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "from-env:7233")
    monkeypatch.setenv("TEMPORAL_API_KEY", "env-key")
    options = connect_options()
    assert (options["target_host"], options["namespace"], options.get("api_key")) == (
        "from-env:7233", "team-a", "env-key")
    flagged = connect_options("from-flag:7233", "ns-flag")
    assert (flagged["target_host"], flagged["namespace"]) == ("from-flag:7233", "ns-flag")


def test_an_unreadable_config_names_the_file_and_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[profile.default]\naddress = \n")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(path))
    with pytest.raises(InputError, match=r"Temporal client config .*broken\.toml \(profile default\): .*line 2"):
        connect_options()
