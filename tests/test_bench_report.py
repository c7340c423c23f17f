"""bench/report.py: the bootstrap interval of a median that the overhead bench reports beside it."""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from report import median, median_interval


def test_median_interval_brackets_the_median_and_narrows_with_more_repeats() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    few = list(1.05 + 0.1 * rng.standard_normal(9))
    many = list(1.05 + 0.1 * rng.standard_normal(144))
    lo, hi = median_interval(few)
    assert lo <= median(few) <= hi and median_interval(few) == (lo, hi)  # seeded: reproducible
    lo2, hi2 = median_interval(many)
    assert lo2 <= median(many) <= hi2 and hi2 - lo2 < 0.6 * (hi - lo)
    assert lo2 < 1.05 < hi2
    assert all(math.isnan(x) for x in median_interval([1.0]))
