"""Summaries of timing samples: the percentiles and ratios every benchmark row is reported with.

Each measurement collects raw samples (milliseconds, seconds or bytes); this module turns them
into `Summary(count, p50, p90, p99, minimum, maximum, mean)` with the same percentile definition
everywhere (linear interpolation between closest ranks, as numpy's default), so ours and
podman's figures are computed identically and a ratio of two summaries means the same thing for
every row.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The `fraction` (0..1) percentile of samples, interpolating linearly between closest ranks.

    Example: samples [10, 20, 30, 40], fraction 0.9 -> rank 0.9 * 3 = 2.7 -> 30 + 0.7 * (40 - 30) = 37.
    """
    if not samples:
        raise ValueError("percentile of no samples: the measurement produced none; check its errors")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"percentile fraction must be between 0 and 1, got {fraction}")
    ordered = sorted(samples)
    rank = fraction * (len(ordered) - 1)
    lower = math.floor(rank)
    upper = math.ceil(rank)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (rank - lower)


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p90: float
    p99: float
    minimum: float
    maximum: float
    mean: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Summary":
        return cls(
            count=len(samples),
            p50=percentile(samples, 0.50),
            p90=percentile(samples, 0.90),
            p99=percentile(samples, 0.99),
            minimum=min(samples),
            maximum=max(samples),
            mean=sum(samples) / len(samples),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs, or None when either side is missing or theirs is zero."""
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs
