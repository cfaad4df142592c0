"""The Prometheus text exposition of the server's metrics (no server needed)."""

from __future__ import annotations

from edge_runtime.server.metrics import ServerMetrics


def _lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    metrics = ServerMetrics()
    for value in (0.003, 0.02, 0.02, 100.0):
        metrics.time_to_first_token.observe(value, "tiny")
    text = metrics.render()
    buckets = _lines(text, "edge_runtime_time_to_first_token_seconds_bucket")
    counts = [int(line.rsplit(" ", 1)[1]) for line in buckets]
    assert counts == sorted(counts) and counts[0] == 1 and counts[-1] == 4
    assert buckets[-1].startswith('edge_runtime_time_to_first_token_seconds_bucket{model="tiny",le="+Inf"}')
    assert 'edge_runtime_time_to_first_token_seconds_count{model="tiny"} 4' in text
    assert _lines(text, "edge_runtime_time_to_first_token_seconds_sum")[0].endswith(" 100.043")


def test_counters_and_gauges_with_escaped_labels() -> None:
    metrics = ServerMetrics()
    metrics.requests.inc("/v1/models", "200")
    metrics.requests.inc("/v1/models", "200")
    metrics.busy_slots.set('we"ird', value=3)
    metrics.busy_slots.set('we"ird', value=2)
    text = metrics.render()
    assert 'edge_runtime_requests_total{route="/v1/models",status="200"} 2' in text
    assert 'edge_runtime_busy_slots{model="we\\"ird"} 2' in text
    assert "# TYPE edge_runtime_requests_total counter" in text
    assert "# TYPE edge_runtime_busy_slots gauge" in text
