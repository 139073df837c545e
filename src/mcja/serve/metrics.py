"""Request counts, latencies and batch sizes in the Prometheus text format (no client library needed)."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Histogram:
    """Cumulative bucket counts, sum and count, as Prometheus histograms are."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets, self.counts, self.sum, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        """The _bucket / _sum / _count sample lines (`labels`: 'key="value",' pairs, or empty)."""
        out = [f'{name}_bucket{{{labels}le="{edge:g}"}} {n}' for edge, n in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}le="+Inf"}} {self.count}')
        braces = f"{{{labels.rstrip(',')}}}" if labels else ""
        return out + [f"{name}_sum{braces} {self.sum:.6f}", f"{name}_count{braces} {self.count}"]


class Metrics:
    """What /metrics reports; safe to update from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.batches = Histogram(BATCH_BUCKETS)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        with self.lock:
            self.requests[(method, route, status)] += 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, size: int) -> None:
        """Record one model forward over `size` images."""
        with self.lock:
            self.batches.observe(size)

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        """The Prometheus text exposition; `gauges`: name -> (help, value)."""
        lines = ["# HELP mcja_requests_total HTTP requests answered, by method, route and status.",
                 "# TYPE mcja_requests_total counter"]
        with self.lock:
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(f'mcja_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}')
            lines += ["# HELP mcja_request_seconds Time to answer a request, by route.",
                      "# TYPE mcja_request_seconds histogram"]
            for route, hist in sorted(self.latency.items()):
                lines += hist.lines("mcja_request_seconds", f'route="{route}",')
            lines += ["# HELP mcja_batch_images Images per model forward (the batching window groups requests).",
                      "# TYPE mcja_batch_images histogram", *self.batches.lines("mcja_batch_images")]
        for name, (text, value) in gauges.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"
