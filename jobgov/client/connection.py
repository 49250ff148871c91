"""Where Temporal is and how to reach it: Temporal's own client configuration (``temporalio.envconfig``).

The same sources as the ``temporal`` CLI and every Temporal SDK, so a team's existing setup
(Temporal Cloud included) works as it is: a profile of the TOML file named by
``TEMPORAL_CONFIG_FILE`` (default ``~/.config/temporalio/temporal.toml``; ``TEMPORAL_PROFILE``
picks the profile, default ``default``), then the ``TEMPORAL_*`` variables over it
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS``,
``TEMPORAL_TLS_CLIENT_CERT_PATH``, ...), then ``--address`` and ``--namespace`` over both.
"""

from __future__ import annotations

import os

from temporalio.envconfig import ClientConfig, ClientConnectConfig

from jobgov.client.errors import InputError

#: Where Temporal is unless the client config, ``--address`` or ``TEMPORAL_ADDRESS`` say otherwise.
DEFAULT_ADDRESS = "localhost:7233"


def connect_options(address: str | None = None, namespace: str | None = None) -> ClientConnectConfig:
    """The keyword arguments of :meth:`temporalio.client.Client.connect` for this process.

    Args:
        address: ``host:port``, over the config's (``None``: the config's, else :data:`DEFAULT_ADDRESS`).
        namespace: Over the config's (``None``: the config's, else ``default``).

    Raises:
        InputError: The config file cannot be read (it is named, with the error).
    """
    try:
        options = ClientConfig.load_client_connect_config()
    except Exception as exc:  # noqa: BLE001 - the bridge raises its own ConfigError type
        source = os.environ.get("TEMPORAL_CONFIG_FILE") or "~/.config/temporalio/temporal.toml"
        profile = os.environ.get("TEMPORAL_PROFILE") or "default"
        raise InputError(f"Temporal client config {source} (profile {profile}): {exc}") from None
    if address:
        options["target_host"] = address
    if namespace:
        options["namespace"] = namespace
    options.setdefault("target_host", DEFAULT_ADDRESS)
    options.setdefault("namespace", "default")
    return options
