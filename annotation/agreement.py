"""Inter-annotator agreement: Krippendorff's alpha (krippendorff), Cohen's kappa (scikit-learn),
Fleiss' kappa, MASI over category sets, leave-one-out agreement and confusion matrices.

Pure computation over ``Ratings`` (unit → annotator → value); ``annotation.selectors`` reads
them from the database. An undefined statistic (one value only, no unit with two ratings) is
reported as ``None`` with the reason, never as NaN.
"""

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np

Value = Hashable


@dataclass
class Ratings:
    """Ratings of one field: unit → annotator → value (missing ratings are simply absent)."""

    by_unit: dict[Any, dict[Any, Value]] = field(default_factory=dict)

    def add(self, unit: Any, annotator: Any, value: Value | None) -> None:
        if value is not None:
            self.by_unit.setdefault(unit, {})[annotator] = value

    def pairable_units(self) -> dict[Any, dict[Any, Value]]:
        """Units with at least two ratings (the only ones agreement statistics use)."""
        return {unit: rated for unit, rated in self.by_unit.items() if len(rated) >= 2}

    def annotators(self) -> list[Any]:
        return sorted({a for rated in self.by_unit.values() for a in rated}, key=str)

    def values(self) -> list[Value]:
        return sorted({v for rated in self.by_unit.values() for v in rated.values()}, key=str)


@dataclass
class Statistic:
    value: float | None
    reason: str = ""
    low: float | None = None
    high: float | None = None
    units: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "ci95": [self.low, self.high], "units": self.units, "undefined": self.reason}


def _undefined(ratings: dict[Any, dict[Any, Value]]) -> str:
    if not ratings:
        return "no unit has two or more ratings"
    values = {v for rated in ratings.values() for v in rated.values()}
    if len(values) < 2:
        return "every rating has the same value, so chance agreement is total and alpha is undefined"
    return ""


def _value_counts(units: dict[Any, dict[Any, Value]], domain: list[Value]) -> np.ndarray:
    index = {value: i for i, value in enumerate(domain)}
    counts = np.zeros((len(units), len(domain)))
    for row, rated in enumerate(units.values()):
        for value in rated.values():
            counts[row, index[value]] += 1
    return counts


def _alpha_of_counts(counts: np.ndarray, metric: Any) -> float:
    return float(krippendorff.alpha(value_counts=counts, level_of_measurement=metric))


def krippendorff_alpha(ratings: Ratings, *, distance: Any = None, bootstrap: int = 0, seed: int = 0) -> Statistic:
    """Alpha (nominal unless ``distance(a, b)`` is given) with an optional bootstrap 95% interval
    over units."""
    units = ratings.pairable_units()
    reason = _undefined(units)
    if reason:
        return Statistic(None, reason, units=len(units))
    domain = sorted({v for rated in units.values() for v in rated.values()}, key=str)
    metric: Any = "nominal"
    if distance is not None:
        table = np.array([[distance(a, b) for b in domain] for a in domain], dtype=float)
        metric = lambda v1, v2, i1, i2, n_v, dtype=np.float64: table[i1, i2].astype(dtype)  # noqa: E731
    counts = _value_counts(units, domain)
    value = _alpha_of_counts(counts, metric)
    low = high = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(bootstrap):
            sample = counts[rng.integers(0, len(counts), len(counts))]
            if np.count_nonzero(sample.sum(axis=0)) >= 2:
                draws.append(_alpha_of_counts(sample, metric))
        if draws:
            low, high = (float(x) for x in np.percentile(draws, [2.5, 97.5]))
    return Statistic(value, units=len(units), low=low, high=high)


def masi_distance(a: frozenset, b: frozenset) -> float:
    """Passonneau's MASI distance between two label sets (two empty sets are identical)."""
    if a == b:
        return 0.0
    union = len(a | b)
    jaccard = len(a & b) / union
    if a <= b or b <= a:
        monotonicity = 2 / 3
    elif a & b:
        monotonicity = 1 / 3
    else:
        monotonicity = 0.0
    return 1 - jaccard * monotonicity


def cohen_kappa(ratings: Ratings, first: Any, second: Any) -> Statistic:
    from sklearn.metrics import cohen_kappa_score

    shared = [(r[first], r[second]) for r in ratings.by_unit.values() if first in r and second in r]
    if not shared:
        return Statistic(None, "the two annotators share no unit")
    a, b = zip(*shared)
    if len(set(a) | set(b)) < 2:
        return Statistic(None, "both gave one and the same value throughout", units=len(shared))
    return Statistic(float(cohen_kappa_score(list(map(str, a)), list(map(str, b)))), units=len(shared))


def pairwise_cohen_kappa(ratings: Ratings) -> list[dict[str, Any]]:
    rows = []
    for first, second in combinations(ratings.annotators(), 2):
        kappa = cohen_kappa(ratings, first, second)
        if kappa.units:
            rows.append({"first": first, "second": second, **kappa.as_dict()})
    return rows


def fleiss_kappa(ratings: Ratings) -> Statistic:
    """Fleiss' kappa, defined only when every pairable unit has the same number of ratings."""
    units = ratings.pairable_units()
    sizes = {len(rated) for rated in units.values()}
    if len(sizes) != 1:
        return Statistic(None, "units have different numbers of ratings" if sizes else "no unit with two ratings")
    reason = _undefined(units)
    if reason:
        return Statistic(None, reason, units=len(units))
    m = sizes.pop()
    counts = _value_counts(units, sorted({v for r in units.values() for v in r.values()}, key=str))
    p_j = counts.sum(axis=0) / counts.sum()
    p_i = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    p_bar, p_e = p_i.mean(), (p_j**2).sum()
    return Statistic(float((p_bar - p_e) / (1 - p_e)), units=len(units))


def leave_one_out(ratings: Ratings) -> list[dict[str, Any]]:
    """Each annotator against the majority of the others on the units they share (ties left out)."""
    rows = []
    for annotator in ratings.annotators():
        agree = compared = 0
        for rated in ratings.by_unit.values():
            if annotator not in rated or len(rated) < 2:
                continue
            others = Counter(v for a, v in rated.items() if a != annotator).most_common()
            if len(others) > 1 and others[0][1] == others[1][1]:
                continue
            compared += 1
            agree += rated[annotator] == others[0][0]
        rows.append({"annotator": annotator, "units": compared, "agreement": agree / compared if compared else None})
    return rows


def confusion_matrix(ratings: Ratings) -> dict[str, Any]:
    """Counts of value pairs over every pair of annotators on the same unit (symmetric)."""
    values = ratings.values()
    index = {v: i for i, v in enumerate(values)}
    matrix = np.zeros((len(values), len(values)), dtype=int)
    for rated in ratings.by_unit.values():
        for a, b in combinations(rated.values(), 2):
            matrix[index[a], index[b]] += 1
            matrix[index[b], index[a]] += 1
    return {"values": [str(v) for v in values], "counts": matrix.tolist()}
