"""Prometheus metrics in the text exposition format (0.0.4), written here: a dozen series do not need a library.

Everything is observed on the server's event loop (the engine reports its grammar mask times in each generation's
last event), so no series needs a lock."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class _LabelledValues:
    name: str
    help: str
    label_names: tuple[str, ...] = ()
    values: dict[LabelValues, float] = field(default_factory=dict)
    kind = "untyped"

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines += [
            f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in sorted(self.values.items())
        ]
        return lines


class Counter(_LabelledValues):
    kind = "counter"

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def set_total(self, *labels: str, value: float) -> None:
        """A count the engine keeps itself; it restarts from 0 when a model reloads, which Prometheus reads as
        a counter reset."""
        self.values[labels] = value


class Gauge(_LabelledValues):
    kind = "gauge"

    def set(self, *labels: str, value: float) -> None:
        self.values[labels] = value


@dataclass
class _Buckets:
    counts: list[int]
    total: float = 0.0
    count: int = 0


@dataclass
class Histogram:
    name: str
    help: str
    bounds: tuple[float, ...]
    label_names: tuple[str, ...] = ()
    series: dict[LabelValues, _Buckets] = field(default_factory=dict)

    def observe(self, value: float, *labels: str) -> None:
        buckets = self.series.get(labels)
        if buckets is None:
            buckets = self.series[labels] = _Buckets(counts=[0] * len(self.bounds))
        position = bisect.bisect_left(self.bounds, value)
        if position < len(self.bounds):
            buckets.counts[position] += 1
        buckets.total += value
        buckets.count += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, buckets in sorted(self.series.items(), key=lambda item: item[0]):
            cumulative = 0
            for bound, count in zip(self.bounds, buckets.counts):
                cumulative += count
                le = f'le="{_number(bound)}"'
                lines.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {cumulative}")
            inf = _labels(self.label_names, key, 'le="+Inf"')
            lines.append(f"{self.name}_bucket{inf} {buckets.count}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(buckets.total)}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {buckets.count}")
        return lines


_LATENCY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_TOKEN_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
_MASK_BOUNDS = (0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05)


class SchedulerView(Protocol):
    @property
    def busy_slots(self) -> int: ...

    @property
    def queue_depth(self) -> int: ...

    @property
    def checkpoint_bytes(self) -> int: ...

    prompt_tokens_decoded: int
    abandoned: int
    checkpoint_restores: int
    prefixes_shared: int

    @property
    def slots_moved(self) -> int: ...

    @property
    def draft_tokens(self) -> tuple[int, int]: ...


class EngineModelView(Protocol):
    """What a scrape reads from each loaded model (the engine's LoadedModel)."""

    @property
    def model_id(self) -> str: ...

    @property
    def scheduler(self) -> SchedulerView | None: ...


class UpstreamView(Protocol):
    """What a scrape reads from each upstream's client."""

    in_flight: int
    outcomes: dict[str, int]

    @property
    def upstream_id(self) -> str: ...

    @property
    def healthy(self) -> bool | None: ...


class ServerMetrics:
    """Every series the server exports. Queue depth and busy slots are the schedulers' own, read per scrape."""

    def __init__(self) -> None:
        self.requests = Counter(
            "edge_runtime_requests_total", "HTTP requests by route and status.", ("route", "status")
        )
        self.prompt_tokens = Counter(
            "edge_runtime_prompt_tokens_total", "Prompt tokens processed.", ("model",)
        )
        self.cached_prompt_tokens = Counter(
            "edge_runtime_cached_prompt_tokens_total",
            "Prompt tokens served from a reused prefix.",
            ("model",),
        )
        self.generated_tokens = Counter(
            "edge_runtime_generated_tokens_total", "Tokens generated.", ("model",)
        )
        self.queue_depth = Gauge(
            "edge_runtime_queue_depth", "Generations waiting for a free slot.", ("model",)
        )
        self.busy_slots = Gauge("edge_runtime_busy_slots", "Slots holding a running sequence.", ("model",))
        self.prompt_tokens_decoded = Counter(
            "edge_runtime_prompt_tokens_decoded_total",
            "Prompt tokens put through llama.cpp since the model loaded (abandoned prefills included).",
            ("model",),
        )
        self.abandoned_generations = Counter(
            "edge_runtime_abandoned_generations_total",
            "Generations whose client left before the end, since the model loaded.",
            ("model",),
        )
        self.checkpoint_restores = Counter(
            "edge_runtime_prefix_checkpoint_restores_total",
            "Prompts that resumed from a saved sliding window after a shared prefix, since the model loaded.",
            ("model",),
        )
        self.prefixes_shared = Counter(
            "edge_runtime_shared_prefixes_total",
            "Prompts that started from a copy of a concurrent prompt's cache instead of reading their prefix.",
            ("model",),
        )
        self.slots_moved = Counter(
            "edge_runtime_slots_moved_total",
            "Running jobs moved to a free slot below them to keep the busy slots consecutive (one pass a step).",
            ("model",),
        )
        self.drafted = Counter(
            "edge_runtime_draft_tokens_total",
            "Tokens guessed by prompt lookup and checked beside a sequence's next token, since the model loaded.",
            ("model",),
        )
        self.draft_accepted = Counter(
            "edge_runtime_draft_tokens_accepted_total",
            "Guessed tokens the model chose itself (each saved a decode), since the model loaded.",
            ("model",),
        )
        self.checkpoint_bytes = Gauge(
            "edge_runtime_prefix_checkpoint_bytes",
            "Memory held by saved sliding windows (prefix checkpoints), all slots together.",
            ("model",),
        )
        self.huge_page_bytes = Gauge(
            "edge_runtime_huge_page_bytes",
            "The process's anonymous memory on transparent huge pages (where the idle pass moves the weights "
            "and KV cache; 0 when the kernel has none, or with --no-huge-pages).",
        )
        self.time_to_first_token = Histogram(
            "edge_runtime_time_to_first_token_seconds",
            "Time from admission to the first generated token.",
            _LATENCY_BOUNDS,
            ("model",),
        )
        self.time_per_token = Histogram(
            "edge_runtime_time_per_output_token_seconds",
            "Mean time per generated token after the first, one sample per request.",
            _TOKEN_BOUNDS,
            ("model",),
        )
        self.grammar_mask_time = Histogram(
            "edge_runtime_grammar_mask_seconds",
            "Time to compute one full grammar mask.",
            _MASK_BOUNDS,
            ("model",),
        )

        self.upstream_up = Gauge(
            "edge_runtime_upstream_up",
            "1 when the upstream's last request or probe succeeded, 0 when it failed (absent before either).",
            ("upstream",),
        )
        self.upstream_in_flight = Gauge(
            "edge_runtime_upstream_in_flight", "Requests sent to the upstream and not yet answered.", ("upstream",)
        )
        self.upstream_requests = Counter(
            "edge_runtime_upstream_requests_total",
            "Attempts sent to the upstream by outcome (ok, rejected, overloaded, timeout, unreachable, error).",
            ("upstream", "outcome"),
        )

    def observe_upstreams(self, upstreams: Sequence[UpstreamView]) -> None:
        for series in (self.upstream_up, self.upstream_in_flight, self.upstream_requests):
            series.values.clear()
        for upstream in upstreams:
            if upstream.healthy is not None:
                self.upstream_up.set(upstream.upstream_id, value=1.0 if upstream.healthy else 0.0)
            self.upstream_in_flight.set(upstream.upstream_id, value=upstream.in_flight)
            for outcome, count in upstream.outcomes.items():
                self.upstream_requests.set_total(upstream.upstream_id, outcome, value=count)

    def observe_engine(self, models: Sequence[EngineModelView]) -> None:
        """Refresh the gauges from the loaded models' schedulers (unloaded models drop out)."""
        per_model = (
            self.queue_depth,
            self.busy_slots,
            self.prompt_tokens_decoded,
            self.abandoned_generations,
            self.checkpoint_restores,
            self.prefixes_shared,
            self.slots_moved,
            self.drafted,
            self.draft_accepted,
            self.checkpoint_bytes,
        )
        for series in per_model:
            series.values.clear()
        for model in models:
            scheduler = model.scheduler
            if scheduler is not None:
                self.queue_depth.set(model.model_id, value=scheduler.queue_depth)
                self.busy_slots.set(model.model_id, value=scheduler.busy_slots)
                self.prompt_tokens_decoded.set_total(model.model_id, value=scheduler.prompt_tokens_decoded)
                self.abandoned_generations.set_total(model.model_id, value=scheduler.abandoned)
                self.checkpoint_restores.set_total(model.model_id, value=scheduler.checkpoint_restores)
                self.prefixes_shared.set_total(model.model_id, value=scheduler.prefixes_shared)
                self.slots_moved.set_total(model.model_id, value=scheduler.slots_moved)
                drafted, accepted = scheduler.draft_tokens
                self.drafted.set_total(model.model_id, value=drafted)
                self.draft_accepted.set_total(model.model_id, value=accepted)
                self.checkpoint_bytes.set(model.model_id, value=scheduler.checkpoint_bytes)

    def render(self) -> str:
        series = (
            self.requests,
            self.prompt_tokens,
            self.cached_prompt_tokens,
            self.generated_tokens,
            self.queue_depth,
            self.busy_slots,
            self.prompt_tokens_decoded,
            self.abandoned_generations,
            self.checkpoint_restores,
            self.prefixes_shared,
            self.slots_moved,
            self.drafted,
            self.draft_accepted,
            self.checkpoint_bytes,
            self.huge_page_bytes,
            self.time_to_first_token,
            self.time_per_token,
            self.grammar_mask_time,
            self.upstream_up,
            self.upstream_in_flight,
            self.upstream_requests,
        )
        return "\n".join(line for s in series for line in s.render()) + "\n"
