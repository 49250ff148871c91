"""The ``notify`` activity: every notification is logged, and POSTed to the plan's webhook if any.

The webhook URL is recorded in history with its ``${VAR}`` references; the
values come from the worker's environment, and are hidden from log records.
Webhook trouble never fails the activity: notifications never block governance.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from temporalio import activity

from jobgov import names
from jobgov.temporal.activities.errors import is_retryable_status
from jobgov.temporal.payloads import NotifyInput

__all__ = ["Notifier", "WebhookSettings", "expand_env"]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Redact(logging.Filter):
    """Hides expanded webhook secrets from log records (httpx logs every URL at INFO)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = message
        for secret in self.secrets:
            hidden = hidden.replace(secret, "***")
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


_REDACT = _Redact()


def expand_env(template: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand ``${VAR}`` references from ``environ``.

    Returns:
        The expanded text and the names of the variables that are not set.
    """
    missing: list[str] = []

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            missing.append(name)
            return ""
        return environ[name]

    return _ENV_REF.sub(value, template), missing


logging.getLogger("httpx").addFilter(_REDACT)


@dataclass(frozen=True)
class WebhookSettings:
    """How hard a notification is pushed to its webhook (never recorded in history)."""

    timeout: float = 5.0
    """Seconds for one webhook POST."""
    attempts: int = 3
    """Tries per notification; then it is logged and dropped."""
    backoff: float = 0.5
    """Seconds before the second try; doubled for each further try."""


class Notifier:
    """The ``notify`` activity.

    Args:
        http: Returns the worker's shared HTTP client.
        settings: Webhook timing.
        environ: Where ``${VAR}`` in webhook URLs is looked up.
    """

    def __init__(self, http: Callable[[], httpx.AsyncClient], settings: WebhookSettings,
                 environ: Mapping[str, str]) -> None:
        self._http = http
        self._settings = settings
        self._environ = environ

    @activity.defn(name=names.ACTIVITY_NOTIFY)
    async def notify(self, input: NotifyInput) -> None:
        """Log a notification and POST it to the webhook, if any; never fails on webhook trouble."""
        who = f"{input.plan}/{input.job}" if input.job else input.plan
        activity.logger.info("jobgov %s %s: %s", input.kind, who, input.message)
        if not input.webhook:
            return
        # The URL in history keeps its ${VAR} references; secrets come from the worker's environment.
        url, missing = expand_env(input.webhook, self._environ)
        _REDACT.secrets.update(
            value for name in _ENV_REF.findall(input.webhook) if len(value := self._environ.get(name, "")) >= 4
        )
        if missing:
            activity.logger.warning(
                "notification not sent to %s: %s not set in the worker's environment",
                input.webhook, ", ".join(missing),
            )  # fmt: skip
            return
        if not url.startswith(("http://", "https://")):
            activity.logger.warning("notification not sent: webhook %s is not an http(s) URL", input.webhook)
            return
        payload = {
            "text": f"[jobgov] {input.kind} {who}: {input.message}",
            **input.model_dump(mode="json", exclude={"webhook"}),
        }
        problem = ""
        for attempt in range(self._settings.attempts):
            if attempt:
                await asyncio.sleep(self._settings.backoff * 2 ** (attempt - 1))
            try:
                response = await self._http().post(url, json=payload, timeout=self._settings.timeout)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}"  # the message may contain the (secret) URL
                continue
            if response.status_code < 300:
                return
            problem = f"HTTP {response.status_code}"
            if not is_retryable_status(response.status_code):
                break
        activity.logger.warning("notification to %s failed (%s); dropped", input.webhook, problem)
