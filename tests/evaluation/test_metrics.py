"""Metrics against hand-computed cases and, where sklearn has the metric, against sklearn; the
bootstrap's vectorised forms against sklearn, in values (their speed, why they are kept, is not a test)."""

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from evaluation.metrics import (
    _rates,
    average_precision,
    binary_metrics,
    category_metrics,
    labels_at_threshold,
    mean_f1,
)

T, F = True, False


def test_hand_computed_case_with_parse_failures():
    gold = [T, T, T, T, F, F, F, F, F, F]
    predicted = [T, T, T, F, T, None, F, F, F, None]
    # The two unparsed outputs are on negatives, so both become false positives:
    # tp 3, fp 1 + 2, fn 1, tn 3.
    result = binary_metrics(gold, predicted, bootstrap_samples=0)
    assert (result.true_positives, result.false_positives, result.false_negatives, result.true_negatives) == (
        3,
        3,
        1,
        3,
    )
    assert (result.n, result.positives, result.parse_failures) == (10, 4, 2)
    assert result.parse_failure_rate == pytest.approx(0.2)
    assert result.precision == pytest.approx(0.5)
    assert result.recall == pytest.approx(0.75)
    assert result.f1 == pytest.approx(0.6)
    assert result.accuracy == pytest.approx(0.6)
    assert result.auprc is None and result.threshold is None and result.intervals == {}


def test_unparsed_positive_is_a_miss():
    result = binary_metrics([T, T], [T, None], bootstrap_samples=0)
    assert (result.true_positives, result.false_negatives, result.recall, result.f1) == (
        1,
        1,
        0.5,
        pytest.approx(2 / 3),
    )


def test_no_predicted_positives_gives_zero_not_nan():
    result = binary_metrics([T, F, F], [F, F, F], bootstrap_samples=0)
    assert (result.precision, result.recall, result.f1, result.accuracy) == (0.0, 0.0, 0.0, pytest.approx(2 / 3))


def test_average_precision_by_hand():
    # Ranked: pos (P 1, R .5), neg, pos (P 2/3, R 1) -> .5 * 1 + .5 * 2/3.
    assert average_precision([T, F, T, F], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.5 + 1 / 3)
    # A tie at 0.9 is one threshold: P .5 at R .5, then P 2/3 at R 1.
    assert average_precision([T, F, T, F], [0.9, 0.9, 0.7, 0.1]) == pytest.approx(0.25 + 1 / 3)
    assert average_precision([F, F], [0.3, 0.4]) is None


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    gold = rng.random(300) < 0.3
    scores = np.round(rng.random(300) * 0.5 + gold * 0.3, 2)  # rounding makes ties
    assert average_precision(gold, scores) == pytest.approx(average_precision_score(gold, scores), abs=1e-12)


def test_bootstrap_rates_equal_sklearns_draw_by_draw():
    """The bootstrap scores a thousand multinomial draws of confusion counts at once (vectorised,
    kept for speed: sklearn needs one call, on expanded labels, per draw); the numbers are sklearn's."""
    rng = np.random.default_rng(2)
    draws = rng.multinomial(400, [0.3, 0.1, 0.1, 0.5], size=50)
    ours = _rates(draws)
    for i, (tp, fp, fn, tn) in enumerate(draws):
        gold = np.r_[np.ones(tp + fn, bool), np.zeros(fp + tn, bool)]
        predicted = np.r_[np.ones(tp, bool), np.zeros(fn, bool), np.ones(fp, bool), np.zeros(tn, bool)]
        precision, recall, f1, _ = precision_recall_fscore_support(gold, predicted, average="binary", zero_division=0.0)
        assert (ours["precision"][i], ours["recall"][i], ours["f1"][i]) == pytest.approx((precision, recall, f1))


def test_unscored_items_get_the_worst_score():
    result = binary_metrics([T, F], [None, F], scores=[None, 0.2], bootstrap_samples=0)
    assert result.auprc == pytest.approx(0.5)  # the positive ranks below the negative
    assert result.auprc == pytest.approx(average_precision_score([1, 0], [0.0, 0.2]))


def test_threshold_is_recorded_with_the_labels_it_made():
    scores = [0.9, 0.4, None, 0.6]
    labels = labels_at_threshold(scores, 0.5)
    assert labels == [T, F, None, T]
    result = binary_metrics([T, T, F, F], labels, scores=scores, threshold=0.5, bootstrap_samples=0)
    assert result.threshold == 0.5
    assert (result.true_positives, result.false_positives, result.false_negatives, result.parse_failures) == (
        1,
        2,
        1,
        1,
    )


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(7)
    gold = list(rng.random(400) < 0.4)
    predicted = [g if rng.random() < 0.8 else not g for g in gold]
    scores = [float(p) * 0.5 + rng.random() * 0.5 for p in predicted]
    first = binary_metrics(gold, predicted, scores=scores, bootstrap_samples=300, seed=3)
    again = binary_metrics(gold, predicted, scores=scores, bootstrap_samples=300, seed=3)
    other = binary_metrics(gold, predicted, scores=scores, bootstrap_samples=300, seed=4)
    assert first.intervals == again.intervals
    assert first.intervals != other.intervals
    assert set(first.intervals) == {"precision", "recall", "f1", "accuracy", "auprc"}
    for name in ("precision", "recall", "f1", "accuracy", "auprc"):
        interval = first.intervals[name]
        assert interval.low < getattr(first, name) < interval.high
        assert interval.high - interval.low < 0.2


def test_bootstrap_agrees_with_resampling_items():
    """The multinomial draw of confusion counts against a plain item-resampling bootstrap."""
    rng = np.random.default_rng(11)
    gold = rng.random(500) < 0.3
    predicted = np.where(rng.random(500) < 0.75, gold, ~gold)
    result = binary_metrics(list(gold), list(predicted), bootstrap_samples=4000, seed=1)
    f1s = []
    for _ in range(4000):
        index = rng.integers(0, 500, 500)
        g, p = gold[index], predicted[index]
        tp = np.sum(g & p)
        f1s.append(2 * tp / (2 * tp + np.sum(~g & p) + np.sum(g & ~p)))
    low, high = np.percentile(f1s, [2.5, 97.5])
    assert result.intervals["f1"].low == pytest.approx(low, abs=0.01)
    assert result.intervals["f1"].high == pytest.approx(high, abs=0.01)


def test_result_serialises_to_json():
    result = binary_metrics([T, F, T], [T, F, None], scores=[0.8, 0.1, None], positive_class="refusal", seed=5)
    data = json.loads(result.to_json())
    assert data["positive_class"] == "refusal"
    assert data["f1"] == result.f1 and data["auprc"] == result.auprc
    assert data["intervals"]["f1"] == {"low": result.intervals["f1"].low, "high": result.intervals["f1"].high}
    assert (data["seed"], data["bootstrap_samples"], data["parse_failure_rate"]) == (5, 1000, pytest.approx(1 / 3))


def test_bad_lengths():
    with pytest.raises(ValueError, match="need as many predictions"):
        binary_metrics([T, F], [T])
    with pytest.raises(ValueError, match="need as many predictions"):
        binary_metrics([], [])
    with pytest.raises(ValueError, match="1 scores for 2 gold labels"):
        binary_metrics([T, F], [T, F], scores=[0.1])


def test_mean_f1():
    small = binary_metrics([T, F], [T, F], bootstrap_samples=0)  # f1 1.0, n 2
    large = binary_metrics([T, T, F, F, F, F], [F, F, F, F, F, F], bootstrap_samples=0)  # f1 0.0, n 6
    assert mean_f1([small, large]) == pytest.approx(0.5)
    assert mean_f1([small, large], weighted=True) == pytest.approx(0.25)


def test_category_metrics_with_a_mapping():
    gold = [{"Violence"}, {"Violence", "Threat"}, set(), {"Hate/Identity Hate"}]
    predicted = [["S1"], ["S1", "S10"], ["S1", "S99"], None]
    mapping = {"S1": "Violence", "S10": "Hate/Identity Hate", "S11": "Threat"}
    result = category_metrics(gold, predicted, mapping)
    violence = result.categories["Violence"]
    assert (violence.support, violence.predicted, violence.true_positives) == (2, 3, 2)
    assert (violence.precision, violence.recall) == (pytest.approx(2 / 3), 1.0)
    hate = result.categories["Hate/Identity Hate"]
    assert (hate.support, hate.predicted, hate.true_positives, hate.precision, hate.recall) == (1, 1, 0, 0.0, 0.0)
    threat = result.categories["Threat"]
    assert (threat.support, threat.predicted, threat.recall, threat.f1) == (1, 0, 0.0, 0.0)
    assert (result.micro.support, result.micro.predicted, result.micro.true_positives) == (4, 4, 2)
    assert result.micro.f1 == pytest.approx(0.5)
    assert result.unmapped == {"S99": 1}
    assert json.loads(result.to_json())["categories"]["Violence"]["support"] == 2


def test_category_metrics_by_hand_with_one_category_or_none():
    # One category: tp 1 (item 1), fp 1 (item 2), fn 1 (item 3).
    result = category_metrics([["S"], [], ["S"], []], [["S"], ["S"], [], None])
    assert list(result.categories) == ["S"]
    score = result.categories["S"]
    assert (score.support, score.predicted, score.true_positives) == (2, 2, 1)
    assert (score.precision, score.recall, score.f1) == (0.5, 0.5, 0.5)
    assert result.micro == score
    empty = category_metrics([[], []], [None, []])
    assert empty.categories == {} and (empty.micro.support, empty.micro.f1) == (0, 0.0)


def test_category_metrics_without_a_mapping():
    result = category_metrics([["S"], ["H", "V"]], [["S", "H"], ["V"]])
    assert {name: score.f1 for name, score in result.categories.items()} == {"H": 0.0, "S": 1.0, "V": 1.0}
    with pytest.raises(ValueError, match="1 predicted category sets for 2 gold ones"):
        category_metrics([["S"], []], [["S"]])
