"""Guard metrics with the field's conventions, computed by scikit-learn (the field's reference).

- The positive class is harmful (or refusal, for refusal detection); F1, precision and recall
  are of that class. A precision, recall or F1 whose denominator is zero is 0.0
  (``zero_division=0.0``).
- A prediction that could not be parsed (None) counts as wrong: it becomes the opposite of the
  gold label, and the parse-failure rate is reported beside F1. For AUPRC an item without a
  score gets the worst one (0 for a positive item, 1 for a negative one).
- Confidence intervals are percentile bootstraps over items with a fixed seed. Two vectorised
  forms of what scikit-learn computes stay (rates from confusion counts, average precision),
  because the bootstrap evaluates them a thousand times per cell: ``tests/evaluation/test_metrics.py``
  checks they agree with scikit-learn and measures them faster (rates by orders of magnitude,
  average precision several times).

scikit-learn is imported when a metric is computed, not with this module (which the web app
imports at start-up).
"""

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class BinaryResult:
    """Binary scores of one guard on one benchmark; ``threshold`` is None when the labels came
    from the guard's text rather than from a score cut."""

    positive_class: str
    n: int
    positives: int
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    parse_failures: int
    parse_failure_rate: float
    precision: float
    recall: float
    f1: float
    accuracy: float
    auprc: float | None
    threshold: float | None
    intervals: dict[str, Interval]
    confidence: float
    bootstrap_samples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def labels_at_threshold(scores: Sequence[float | None], threshold: float) -> list[bool | None]:
    """Positive where the score reaches the threshold; a missing score stays unparsed (None)."""
    return [None if score is None else score >= threshold for score in scores]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise numerator / denominator, 0.0 where the denominator is 0."""
    return np.divide(numerator, denominator, out=np.zeros(np.shape(numerator)), where=denominator != 0)


def _rates(cells: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and accuracy from confusion counts (…, [tp, fp, fn, tn]) at once for
    every bootstrap draw (scikit-learn takes one set of labels per call)."""
    cells = cells.astype(float)
    tp, fp, fn, tn = cells[..., 0], cells[..., 1], cells[..., 2], cells[..., 3]
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
    }


def average_precision(gold: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the precision-recall curve as step-wise average precision, sum over thresholds
    of (R_k - R_{k-1}) * P_k: scikit-learn's ``average_precision_score`` (tied scores form one
    threshold) without its per-call checks, since the bootstrap asks it once per resample.
    None without positives."""
    y = np.asarray(gold, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if not y.any():
        return None
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    true_positives = np.cumsum(y)[last_of_tie]
    precision = true_positives / (last_of_tie + 1)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _interval(values: np.ndarray, confidence: float) -> Interval:
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high))


def _bootstrap(
    cells: np.ndarray,
    gold: np.ndarray,
    scores: np.ndarray | None,
    samples: int,
    confidence: float,
    rng: np.random.Generator,
) -> dict[str, Interval]:
    """Resampling n items with replacement draws the confusion counts from a multinomial over
    the four cells, so the confusion-based metrics need no per-item resampling; AUPRC does."""
    n = int(cells.sum())
    drawn = rng.multinomial(n, cells / n, size=samples)
    intervals = {name: _interval(values, confidence) for name, values in _rates(drawn).items()}
    if scores is not None:
        values = []
        for _ in range(samples):
            index = rng.integers(0, n, size=n)
            value = average_precision(gold[index], scores[index])
            values.append(np.nan if value is None else value)
        intervals["auprc"] = _interval(np.asarray(values), confidence)
    return intervals


def binary_metrics(
    gold: Sequence[bool],
    predicted: Sequence[bool | None],
    *,
    scores: Sequence[float | None] | None = None,
    threshold: float | None = None,
    positive_class: str = "harmful",
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BinaryResult:
    """F1, precision, recall and accuracy of the positive class, AUPRC where scores exist, and
    bootstrap intervals (none when ``bootstrap_samples`` is 0)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"need as many predictions as gold labels, and some: {len(predicted)} for {len(gold)}")
    if scores is not None and len(scores) != len(gold):
        raise ValueError(f"{len(scores)} scores for {len(gold)} gold labels")
    y = np.asarray(gold, dtype=bool)
    failed = np.array([label is None for label in predicted])
    p = np.where(failed, ~y, np.array([bool(label) for label in predicted]))
    (tn, fp), (fn, tp) = confusion_matrix(y, p, labels=[False, True])
    cells = np.array([tp, fp, fn, tn])
    precision, recall, f1, _ = precision_recall_fscore_support(y, p, average="binary", zero_division=0.0)
    rates = {"precision": precision, "recall": recall, "f1": f1, "accuracy": accuracy_score(y, p)}
    rates = {name: float(value) for name, value in rates.items()}
    s = None
    if scores is not None:
        s = np.array([float(not label) if score is None else score for label, score in zip(gold, scores)])
    intervals = {}
    if bootstrap_samples:
        intervals = _bootstrap(cells, y, s, bootstrap_samples, confidence, np.random.default_rng(seed))
    return BinaryResult(
        positive_class=positive_class,
        n=len(y),
        positives=int(y.sum()),
        true_positives=int(cells[0]),
        false_positives=int(cells[1]),
        false_negatives=int(cells[2]),
        true_negatives=int(cells[3]),
        parse_failures=int(failed.sum()),
        parse_failure_rate=float(failed.mean()),
        auprc=None if s is None else average_precision(y, s),
        threshold=threshold,
        intervals=intervals,
        confidence=confidence,
        bootstrap_samples=bootstrap_samples,
        seed=seed,
        **rates,
    )


def mean_f1(results: Sequence[BinaryResult], *, weighted: bool = False) -> float:
    """The unweighted (or, with ``weighted``, size-weighted) mean F1 across benchmarks."""
    weights = [result.n if weighted else 1 for result in results]
    return sum(result.f1 * weight for result, weight in zip(results, weights)) / sum(weights)


@dataclass(frozen=True)
class CategoryScore:
    support: int
    predicted: int
    true_positives: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class CategoryResult:
    """Per-category and micro-averaged scores; ``unmapped`` counts predicted codes that the
    mapping does not cover (left out of the scores)."""

    categories: dict[str, CategoryScore]
    micro: CategoryScore
    unmapped: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def category_metrics(
    gold: Sequence[Iterable[str]],
    predicted: Sequence[Iterable[str] | None],
    mapping: Mapping[str, str] | None = None,
) -> CategoryResult:
    """Precision and recall per category from gold and predicted category sets per item.

    ``mapping`` takes the guard's codes (source) to the benchmark's (target); without it the
    codes must already be the benchmark's. An unparsed prediction (None) predicts nothing.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(predicted)} predicted category sets for {len(gold)} gold ones")
    truths, guesses = [], []
    unmapped: Counter[str] = Counter()
    for gold_codes, predicted_codes in zip(gold, predicted):
        guess = set()
        for code in predicted_codes or ():
            if mapping is None:
                guess.add(code)
            elif code in mapping:
                guess.add(mapping[code])
            else:
                unmapped[code] += 1
        truths.append(set(gold_codes))
        guesses.append(guess)
    names = sorted(set().union(*truths, *guesses))
    if not names:
        return CategoryResult({}, CategoryScore(0, 0, 0, 0.0, 0.0, 0.0), dict(sorted(unmapped.items())))
    from sklearn.metrics import multilabel_confusion_matrix, precision_recall_fscore_support
    from sklearn.preprocessing import MultiLabelBinarizer

    binarizer = MultiLabelBinarizer(classes=names)
    y_true, y_pred = binarizer.fit_transform(truths), binarizer.transform(guesses)
    labels = list(range(len(names)))
    if len(names) == 1:  # one indicator column reads as binary labels: score the class 1
        y_true, y_pred, labels = y_true.ravel(), y_pred.ravel(), [1]
    confusion = multilabel_confusion_matrix(y_true, y_pred, labels=labels)  # per category [[tn, fp], [fn, tp]]
    scores = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    micro = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="micro", zero_division=0.0)

    def score(cells: np.ndarray, precision: float, recall: float, f1: float) -> CategoryScore:
        (_, fp), (fn, tp) = cells
        return CategoryScore(int(tp + fn), int(tp + fp), int(tp), float(precision), float(recall), float(f1))

    return CategoryResult(
        categories={
            name: score(confusion[i], scores[0][i], scores[1][i], scores[2][i]) for i, name in enumerate(names)
        },
        micro=score(confusion.sum(axis=0), *micro[:3]),
        unmapped=dict(sorted(unmapped.items())),
    )
