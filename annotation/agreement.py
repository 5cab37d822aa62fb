"""Inter-annotator agreement: Krippendorff's alpha (the ``krippendorff`` package for nominal
values; the same formula over sparse coincidences for MASI and bootstrap draws), Cohen's and
Fleiss' kappa, per-category binary alpha, leave-one-out agreement and confusion matrices.
Tests check every one against ``krippendorff`` and scikit-learn applied directly.

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
class Table:
    """Pairable units as a value-count matrix (units x values), plus every rating's position."""

    domain: list[Value]
    counts: np.ndarray
    rating_rows: np.ndarray
    rating_values: np.ndarray
    rating_annotators: list[Any]


@dataclass
class Ratings:
    """Ratings of one field: unit → annotator → value (missing ratings are simply absent)."""

    by_unit: dict[Any, dict[Any, Value]] = field(default_factory=dict)
    _table: Table | None = field(default=None, repr=False)

    def add(self, unit: Any, annotator: Any, value: Value | None) -> None:
        if value is not None:
            self.by_unit.setdefault(unit, {})[annotator] = value
            self._table = None

    def pairable_units(self) -> dict[Any, dict[Any, Value]]:
        """Units with at least two ratings (the only ones agreement statistics use)."""
        return {unit: rated for unit, rated in self.by_unit.items() if len(rated) >= 2}

    def annotators(self) -> list[Any]:
        return sorted({a for rated in self.by_unit.values() for a in rated}, key=str)

    def values(self) -> list[Value]:
        return sorted({v for rated in self.by_unit.values() for v in rated.values()}, key=str)

    def table(self) -> Table:
        """The pairable units as counts, built once and reused by every statistic."""
        if self._table is None:
            units = self.pairable_units()
            domain = sorted({v for rated in units.values() for v in rated.values()}, key=str)
            index = {value: i for i, value in enumerate(domain)}
            rows, values, annotators = [], [], []
            for row, rated in enumerate(units.values()):
                for annotator, value in rated.items():
                    rows.append(row)
                    values.append(index[value])
                    annotators.append(annotator)
            rows_array, values_array = np.array(rows, dtype=int), np.array(values, dtype=int)
            counts = np.zeros((len(units), len(domain)))
            np.add.at(counts, (rows_array, values_array), 1)
            self._table = Table(domain, counts, rows_array, values_array, annotators)
        return self._table


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


def _unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """Each unit's coincidence matrix, flattened: (n n^T - diag(n)) / (m - 1), shape (N, V*V)."""
    m = counts.sum(axis=1)
    outer = counts[:, :, None] * counts[:, None, :]
    idx = np.arange(counts.shape[1])
    outer[:, idx, idx] -= counts
    return (outer / (m - 1)[:, None, None]).reshape(len(counts), -1)


def _alpha_from_coincidence(coincidence: np.ndarray, delta: np.ndarray) -> float | None:
    """Krippendorff's alpha from a coincidence matrix and a squared-distance matrix."""
    n_c = coincidence.sum(axis=0)
    n = n_c.sum()
    expected = (np.outer(n_c, n_c) * delta).sum() - (n_c * np.diag(delta)).sum()
    if n <= 1 or expected == 0:
        return None
    return float(1 - (n - 1) * (coincidence * delta).sum() / expected)


def krippendorff_alpha(ratings: Ratings, *, distance: Any = None, bootstrap: int = 0, seed: int = 0) -> Statistic:
    """Alpha, nominal (by the ``krippendorff`` package) or with ``distance(a, b)`` (e.g. MASI),
    with an optional bootstrap 95% interval over units.

    Bootstrap draws and distance-based alpha use per-unit coincidence matrices, so memory grows
    with units times values squared once, not per draw; tests check both paths against the
    package."""
    units = ratings.pairable_units()
    reason = _undefined(units)
    if reason:
        return Statistic(None, reason, units=len(units))
    table = ratings.table()
    domain = table.domain
    if distance is None:
        delta = 1 - np.eye(len(domain))
    else:
        delta = np.array([[distance(a, b) for b in domain] for a in domain], dtype=float)
    counts = table.counts
    if distance is None:
        value = float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))
        per_unit = _unit_coincidences(counts) if bootstrap else None
    else:
        per_unit = _sparse_unit_coincidences(units, domain)
        value = _alpha_from_coincidence(np.asarray(per_unit.sum(axis=0)).reshape(delta.shape), delta)
    low = high = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(bootstrap):
            size = per_unit.shape[0]
            weights = np.bincount(rng.integers(0, size, size), minlength=size)
            draw = _alpha_from_coincidence(np.asarray(weights @ per_unit).reshape(delta.shape), delta)
            if draw is not None:
                draws.append(draw)
        if draws:
            low, high = (float(x) for x in np.percentile(draws, [2.5, 97.5]))
    return Statistic(value, units=len(units), low=low, high=high)


def _sparse_unit_coincidences(units: dict[Any, dict[Any, Value]], domain: list[Value]):
    """Per-unit coincidences as a sparse matrix (for many distinct values, e.g. category sets)."""
    from scipy.sparse import csr_matrix

    index = {value: i for i, value in enumerate(domain)}
    size = len(domain)
    rows, cols, data = [], [], []
    for row, rated in enumerate(units.values()):
        values = [index[v] for v in rated.values()]
        weight = 1 / (len(values) - 1)
        for a, b in combinations(range(len(values)), 2):
            for first, second in ((values[a], values[b]), (values[b], values[a])):
                rows.append(row)
                cols.append(first * size + second)
                data.append(weight)
    return csr_matrix((data, (rows, cols)), shape=(len(units), size * size))


def binary_alpha_by_category(category_sets: Ratings, codes: list[str]) -> dict[str, Statistic]:
    """Alpha of "names category c" (yes/no) for each category, from the annotators' category sets."""
    units = category_sets.pairable_units()
    column = {code: i for i, code in enumerate(codes)}
    present = np.zeros((len(units), len(codes)))
    raters = np.zeros(len(units))
    for row, rated in enumerate(units.values()):
        raters[row] = len(rated)
        for chosen in rated.values():
            for code in chosen:
                if code in column:
                    present[row, column[code]] += 1
    result = {}
    for code, i in column.items():
        yes = present[:, i]
        if not len(units):
            result[code] = Statistic(None, "no unit has two or more ratings")
        elif not yes.any() or (yes == raters).all():
            result[code] = Statistic(None, "every rating has the same value, so alpha is undefined", units=len(units))
        else:
            counts = np.column_stack([raters - yes, yes])
            value = float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))
            result[code] = Statistic(value, units=len(units))
    return result


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


def kappa_of_pairs(pairs: list[tuple[Value, Value]]) -> Statistic:
    """Cohen's kappa of paired ratings (the formula scikit-learn's cohen_kappa_score uses; the
    tests check the two agree, this one avoids its per-call overhead across many pairs)."""
    if not pairs:
        return Statistic(None, "the two annotators share no unit")
    domain = sorted({v for pair in pairs for v in pair}, key=str)
    if len(domain) < 2:
        return Statistic(None, "both gave one and the same value throughout", units=len(pairs))
    index = {v: i for i, v in enumerate(domain)}
    table = np.zeros((len(domain), len(domain)))
    np.add.at(table, ([index[a] for a, _ in pairs], [index[b] for _, b in pairs]), 1)
    total = table.sum()
    observed = np.trace(table) / total
    expected = (table.sum(axis=0) * table.sum(axis=1)).sum() / total**2
    return Statistic(float((observed - expected) / (1 - expected)), units=len(pairs))


def pairwise_cohen_kappa(ratings: Ratings) -> list[dict[str, Any]]:
    """Kappa for every pair of annotators that share units (one pass over the units)."""
    pairs: dict[tuple[Any, Any], list[tuple[Value, Value]]] = {}
    for rated in ratings.by_unit.values():
        for first, second in combinations(sorted(rated, key=str), 2):
            pairs.setdefault((first, second), []).append((rated[first], rated[second]))
    return [
        {"first": first, "second": second, **kappa_of_pairs(shared).as_dict()}
        for (first, second), shared in sorted(pairs.items(), key=lambda item: (str(item[0][0]), str(item[0][1])))
    ]


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
    counts = ratings.table().counts
    p_j = counts.sum(axis=0) / counts.sum()
    p_i = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    p_bar, p_e = p_i.mean(), (p_j**2).sum()
    return Statistic(float((p_bar - p_e) / (1 - p_e)), units=len(units))


def leave_one_out(ratings: Ratings) -> list[dict[str, Any]]:
    """Each annotator against the majority of the others on the units they share (ties left out)."""
    table = ratings.table()
    agree: Counter = Counter()
    compared: Counter = Counter()
    if len(table.rating_rows):
        others = table.counts[table.rating_rows].copy()
        others[np.arange(len(others)), table.rating_values] -= 1
        # A zero column keeps "second best" defined when there is one value only.
        top_two = -np.sort(-np.pad(others, ((0, 0), (0, 1))), axis=1)[:, :2]
        decided = top_two[:, 0] > top_two[:, 1]
        agrees = others.argmax(axis=1) == table.rating_values
        for annotator, is_decided, is_agreeing in zip(table.rating_annotators, decided, agrees):
            if is_decided:
                compared[annotator] += 1
                agree[annotator] += bool(is_agreeing)
    return [
        {
            "annotator": annotator,
            "units": compared[annotator],
            "agreement": agree[annotator] / compared[annotator] if compared[annotator] else None,
        }
        for annotator in ratings.annotators()
    ]


def confusion_matrix(ratings: Ratings) -> dict[str, Any]:
    """Counts of value pairs over every ordered pair of annotators on the same unit (symmetric)."""
    table = ratings.table()
    counts = table.counts
    matrix = (counts.T @ counts) - np.diag(counts.sum(axis=0))
    return {"values": [str(v) for v in table.domain], "counts": matrix.astype(int).tolist()}
