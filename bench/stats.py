"""Latency percentiles and rate bookkeeping shared by the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def summary(self, seconds: float) -> dict[str, float | int | dict[str, int]]:
        ordered = sorted(self.latencies)
        return {
            "count": len(ordered),
            "per_second": round(len(ordered) / seconds, 1) if seconds else 0.0,
            "p50_ms": round(percentile(ordered, 0.50) * 1000, 1),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 1),
            "errors": dict(self.errors),
        }
