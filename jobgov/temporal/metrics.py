"""jobgov's own metrics, through Temporal's runtime telemetry (the same Prometheus endpoint, or
OpenTelemetry exporter, as the SDK's ``temporal_*`` metrics).

Names and labels are compatibility data for dashboards (pinned by ``tests/unit/test_names.py``):

================================  =========  ===============================================
``jobgov_asks``                   counter    asks decided, by ``action``, ``category``, ``actor``
                                             (``policy``, a person, ``timeout``, ``jobgov``)
``jobgov_auto_decision_latency``  histogram  ms from an ask read off the stream to its reply
                                             accepted by the agent, by ``action``
``jobgov_tokens``                 counter    tokens counted, by ``plan`` and ``model``
``jobgov_cost_usd``               histogram  USD of each counted step, by ``plan`` and ``model``
                                             (its ``_sum`` is the spend)
``jobgov_notifications``          counter    by ``kind``: ``budget-warning``, ``paused``,
                                             ``killed``, ``finished``, ``agent-unreachable`` ...
``jobgov_job_states``             counter    jobs entering each ``state``
``jobgov_agent_reconnects``       counter    event-stream reconnects
``jobgov_agent_unreachable``      histogram  ms an agent was unreachable, per outage
================================  =========  ===============================================

Workflow metrics are emitted only when the workflow code runs for the first time, never on
replay (the SDK drops them then), so a replayed history counts nothing twice.
"""

from __future__ import annotations

from typing import Final

from temporalio.common import MetricCounter, MetricHistogramFloat, MetricMeter

ASKS: Final = "jobgov_asks"
AUTO_DECISION_LATENCY: Final = "jobgov_auto_decision_latency"
TOKENS: Final = "jobgov_tokens"
COST_USD: Final = "jobgov_cost_usd"
NOTIFICATIONS: Final = "jobgov_notifications"
JOB_STATES: Final = "jobgov_job_states"
AGENT_RECONNECTS: Final = "jobgov_agent_reconnects"
AGENT_UNREACHABLE: Final = "jobgov_agent_unreachable"

#: What each counter counts (their descriptions on the endpoint).
_COUNTERS: Final = {
    ASKS: "Asks decided, by action, category and actor",
    TOKENS: "Tokens counted, by plan and model",
    NOTIFICATIONS: "Notifications, by kind (budget warnings, pauses, kills, ends, unreachable agents)",
    JOB_STATES: "Jobs entering each state",
    AGENT_RECONNECTS: "Event-stream reconnects to agents",
}
_HISTOGRAMS: Final = {
    AUTO_DECISION_LATENCY: ("Milliseconds from an ask on the stream to its automatic reply accepted", "ms"),
    COST_USD: ("USD of each counted model step, by plan and model", "USD"),
    AGENT_UNREACHABLE: ("Milliseconds an agent was unreachable, per outage", "ms"),
}

#: Bucket bounds for the Prometheus exporter (``PrometheusConfig.histogram_bucket_overrides``): the
#: SDK's defaults suit task latencies in ms, not sub-second decisions or fractions of a dollar.
HISTOGRAM_BUCKETS: Final[dict[str, list[float]]] = {
    AUTO_DECISION_LATENCY: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000],
    COST_USD: [0.0001, 0.001, 0.01, 0.1, 1, 10],
    AGENT_UNREACHABLE: [1000, 5000, 15000, 60000, 300000, 1800000],
}

#: A metric event as pure code records it: (name, value, labels). Workflows turn them into metrics.
MetricEvent = tuple[str, float, dict[str, str]]


class Metrics:
    """jobgov's instruments on one meter (an activity's or a workflow's), created on first use."""

    def __init__(self, meter: MetricMeter) -> None:
        self._meter = meter
        self._counters: dict[str, MetricCounter] = {}
        self._histograms: dict[str, MetricHistogramFloat] = {}

    def add(self, name: str, value: float, labels: dict[str, str]) -> None:
        """Count ``value`` on counter ``name``, or record it on histogram ``name``."""
        if name in _HISTOGRAMS:
            histogram = self._histograms.get(name)
            if histogram is None:
                description, unit = _HISTOGRAMS[name]
                histogram = self._histograms[name] = self._meter.create_histogram_float(name, description, unit)
            histogram.record(value, labels)
            return
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = self._meter.create_counter(name, _COUNTERS[name])
        counter.add(int(value), labels)

    def emit(self, events: list[MetricEvent]) -> None:
        for name, value, labels in events:
            self.add(name, value, labels)
