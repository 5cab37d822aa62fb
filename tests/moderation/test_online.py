"""The online ensemble: hand-computed rounds for WM, Hedge and FPL, abstentions, state round trips,
numerical stability, and each algorithm's bound on random and adversarial streams (hypothesis).

Every bound is on the expected loss, which the ensemble reports exactly (WM: its decision; Hedge and
FPL: the probability of an unsafe decision, for FPL from the exact leader distribution), so the
bound checks are deterministic. Separate tests tie the random draws to those probabilities."""

import json
import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate

from moderation.online import (
    Forecast,
    OnlineState,
    new_state,
    plot_simulation,
    predict,
    simulate,
    update,
    weights,
)

LN2 = math.log(2)
# three experts, four rounds: (votes, truth)
HAND_ROUNDS = [((1, 0, 0), 1), ((1, 1, 0), 0), ((0, 1, 1), 1), ((0, 0, 1), 0)]
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def run(state: OnlineState, rounds) -> tuple[list[Forecast], OnlineState]:
    """Predict and update through (votes, truth) rounds."""
    predictions = []
    for votes, truth in rounds:
        predictions.append(predict(state, votes))
        state = update(state, votes, truth)
    return predictions, state


def random_rounds(seed: int, n_experts: int, n_rounds: int, abstain: float = 0.2) -> list:
    """Experts of random accuracy that abstain with probability ``abstain``."""
    rng = np.random.default_rng(seed)
    accuracy = rng.uniform(0.3, 0.95, n_experts)
    rounds = []
    for _ in range(n_rounds):
        truth = int(rng.integers(2))
        votes = [
            None if rng.random() < abstain else (truth if rng.random() < accuracy[i] else 1 - truth)
            for i in range(n_experts)
        ]
        rounds.append((votes, truth))
    return rounds


def test_weighted_majority_hand_case():
    predictions, state = run(new_state("paper-wm", 3), HAND_ROUNDS)
    # weights (1/2)^mistakes, normalised: A right, B and C wrong in round 1; A and B wrong in 2; ...
    assert [p.weights for p in predictions] == [
        pytest.approx((1 / 3, 1 / 3, 1 / 3), rel=1e-12),
        pytest.approx((0.5, 0.25, 0.25), rel=1e-12),
        pytest.approx((0.4, 0.2, 0.4), rel=1e-12),
        pytest.approx((0.25, 0.25, 0.5), rel=1e-12),
    ]
    # 1/3 vs 2/3 -> safe; 3/4 vs 1/4 -> unsafe; 0.6 vs 0.4 -> unsafe; 1/2 vs 1/2 -> tie -> unsafe
    assert [p.decision for p in predictions] == [0, 1, 1, 1]
    assert [p.p_unsafe for p in predictions] == [0.0, 1.0, 1.0, 1.0]
    assert state.losses == (2.0, 2.0, 2.0) and state.rounds == 4


def test_weighted_majority_with_another_eta():
    predictions, state = run(new_state("wm", 3, eta=0.25), HAND_ROUNDS)
    # round 3: weights (3/4, 9/16, 3/4): unsafe 9/16 + 3/4 = 21/16 beats 3/4
    assert predictions[2].weights == pytest.approx((4 / 11, 3 / 11, 4 / 11), rel=1e-12)
    # round 4: weights (9/16, 9/16, 3/4): safe 9/8 beats unsafe 3/4
    assert [p.decision for p in predictions] == [0, 1, 1, 0]


def test_hedge_hand_case():
    predictions, state = run(new_state("hedge", 3, eta=LN2), HAND_ROUNDS)
    # with η = ln 2 the weights are 2^-loss, as in the WM case with η = 1/2
    assert predictions[1].weights == pytest.approx((0.5, 0.25, 0.25), rel=1e-12)
    assert predictions[3].weights == pytest.approx((0.25, 0.25, 0.5), rel=1e-12)
    p_unsafe = [p.p_unsafe for p in predictions]
    assert p_unsafe == pytest.approx([1 / 3, 3 / 4, 3 / 5, 1 / 2], rel=1e-12)
    expected_mistakes = sum(abs(p - truth) for p, (_, truth) in zip(p_unsafe, HAND_ROUNDS))
    assert expected_mistakes == pytest.approx(2 / 3 + 3 / 4 + 2 / 5 + 1 / 2, rel=1e-12)
    assert state.losses == (2.0, 2.0, 2.0)


def test_hedge_learning_rates():
    assert new_state("hedge", 4, horizon=100).eta == pytest.approx(math.sqrt(8 * math.log(4) / 100))
    anytime = new_state("hedge", 2)
    assert anytime.eta is None
    # anytime: round 2 uses η_2 = sqrt(8 ln 2 / 2) = 2 sqrt(ln 2)
    after = update(anytime, [1, 0], 0)
    loser = math.exp(-2 * math.sqrt(LN2))
    assert predict(after, [1, 0]).weights == pytest.approx((loser / (1 + loser), 1 / (1 + loser)))


def test_fpl_hand_case():
    predictions, state = run(new_state("fpl", 3, eta=LN2), HAND_ROUNDS)
    # P(i leads) = c_i ∫ Π_{j≠i} (1 - c_j u) du with c = 2^-(L - min L); e.g. round 2, c = (1, 1/2, 1/2):
    # P(A) = ∫ (1 - u/2)^2 = 7/12, P(B) = P(C) = 1/2 ∫ (1 - u)(1 - u/2) = 5/24
    assert [p.weights for p in predictions] == [
        pytest.approx((1 / 3, 1 / 3, 1 / 3), rel=1e-12),
        pytest.approx((7 / 12, 5 / 24, 5 / 24), rel=1e-12),
        pytest.approx((5 / 12, 1 / 6, 5 / 12), rel=1e-12),
        pytest.approx((5 / 24, 5 / 24, 7 / 12), rel=1e-12),
    ]
    p_unsafe = [p.p_unsafe for p in predictions]
    assert p_unsafe == pytest.approx([1 / 3, 19 / 24, 7 / 12, 7 / 12], rel=1e-12)
    assert sum(abs(p - truth) for p, (_, truth) in zip(p_unsafe, HAND_ROUNDS)) == pytest.approx(59 / 24, rel=1e-12)
    assert all(votes[p.leader] == p.decision for p, (votes, _) in zip(predictions, HAND_ROUNDS))
    assert state.losses == (2.0, 2.0, 2.0)


def fpl_leader_probability(losses: list[float], eta: float, i: int) -> float:
    """P(L_i - Z_i/η is the smallest), Z ~ Exp(1), by numerical integration over Z_i."""

    def density(z: float) -> float:
        others = [1 - math.exp(-max(0.0, z + eta * (loss - losses[i]))) for j, loss in enumerate(losses) if j != i]
        return math.exp(-z) * math.prod(others)

    # below the largest η(L_i - L_j) some factor is 0; above it the density is smooth
    start = max(0.0, *(eta * (losses[i] - loss) for loss in losses))
    return integrate.quad(density, start, math.inf, epsabs=1e-13, limit=200)[0]


@PROPERTY
@given(st.lists(st.floats(0, 30), min_size=1, max_size=8), st.floats(0.05, 2))
def test_fpl_leader_probabilities_match_integration(losses, eta):
    state = OnlineState("fpl", eta, tuple(losses))
    expected = [fpl_leader_probability(losses, eta, i) for i in range(len(losses))]
    assert weights(state) == pytest.approx(expected, abs=1e-9)


def test_random_draws_follow_the_probabilities():
    """Over 4000 seeds the perturbed leaders and the decisions match the exact probabilities (< 4.5 sigma)."""
    votes = [1, 0, None, 1]
    fpl = OnlineState("fpl", 0.26, (3.0, 1.0, 0.0, 6.5), rounds=7)
    hedge = replace(fpl, algorithm="hedge", eta=0.4)
    seeds = range(4000)
    fpl_runs = [predict(replace(fpl, seed=seed), votes) for seed in seeds]
    hedge_runs = [predict(replace(hedge, seed=seed), votes) for seed in seeds]
    leaders = np.bincount([p.leader for p in fpl_runs], minlength=4) / len(seeds)
    probabilities = weights(fpl)
    assert np.all(np.abs(leaders - probabilities) <= 4.5 * np.sqrt(probabilities * (1 - probabilities) / len(seeds)))
    for runs in (fpl_runs, hedge_runs):
        p = runs[0].p_unsafe
        assert 0.05 < p < 0.95
        assert abs(np.mean([r.decision for r in runs]) - p) <= 4.5 * math.sqrt(p * (1 - p) / len(seeds))
    # the abstaining expert 2 leads often; the decision then comes from the voters' leader distribution
    assert leaders[2] > 0.2
    voters = probabilities[[0, 1, 3]]
    assert fpl_runs[0].p_unsafe == pytest.approx((voters[0] + voters[2]) / voters.sum())


@pytest.mark.parametrize("algorithm", ["paper-wm", "hedge", "paper-fpl"])
def test_realised_mistakes_average_to_the_expected_ones(algorithm):
    rounds = random_rounds(5, 4, 120)
    stream = [(t, truth) for t, (_, truth) in enumerate(rounds)]
    experts = {f"e{i}": {t: votes[i] for t, (votes, _) in enumerate(rounds)} for i in range(4)}
    results = [simulate(stream, experts, algorithm, seed) for seed in range(150)]
    expected = results[0].expected_mistakes[-1]
    assert all(r.expected_mistakes[-1] == expected for r in results)
    realised = np.array([r.mistakes[-1] for r in results])
    if algorithm == "paper-wm":
        assert np.all(realised == expected)
    else:
        assert realised.std() > 0
        assert abs(realised.mean() - expected) <= 4.5 * realised.std() / math.sqrt(len(results))


def test_weighted_majority_abstentions():
    rounds = [((1, None, 0), 1), ((None, None, None), 0), ((0, 1, None), 0)]
    predictions, state = run(new_state("paper-wm", 3), rounds)
    # round 1: 1 vs 1, tie -> unsafe, right; the abstainer B "agreed" and is not penalised: losses (0, 0, 1)
    # round 2: nobody votes -> unsafe, wrong; everyone is penalised: (1, 1, 2)
    # round 3: A (weight 1) safe vs B (weight 1) unsafe -> unsafe, wrong; C abstained and is penalised
    assert [p.decision for p in predictions] == [1, 1, 1]
    assert predictions[2].weights == pytest.approx((0.4, 0.4, 0.2), rel=1e-12)
    assert state.losses == (1.0, 2.0, 3.0)


def test_hedge_abstentions():
    rounds = [((1, None, 0), 1), ((None, None, None), 0), ((0, 1, None), 0)]
    predictions, state = run(new_state("hedge", 3, eta=LN2), rounds)
    # round 1: p = 1/2 over the voters, so the abstainer's loss is 1/2: (0, 1/2, 1)
    # round 2: p = 1, loss 1 for everyone: (1, 3/2, 2)
    # round 3: voters A (2^-1) and B (2^-3/2): p = 1 / (1 + sqrt 2) = sqrt 2 - 1, C's loss sqrt 2 - 1
    assert [p.p_unsafe for p in predictions] == pytest.approx([0.5, 1.0, math.sqrt(2) - 1], rel=1e-12)
    assert state.losses == pytest.approx((1.0, 2.5, 1 + math.sqrt(2)), rel=1e-12)


def test_fpl_everyone_abstains():
    prediction = predict(new_state("paper-fpl", 2), [None, None])
    assert (prediction.decision, prediction.p_unsafe) == (1, 1.0)
    assert update(new_state("paper-fpl", 2), [None, None], 0).losses == (1.0, 1.0)


def test_a_sometimes_silent_expert_is_no_free_comparator():
    """An expert that only votes when right has no mistakes but pays for the ensemble's errors while silent."""
    rounds = random_rounds(11, 3, 200, abstain=0.0)
    rounds = [(votes + [truth if t % 5 == 0 else None], truth) for t, (votes, truth) in enumerate(rounds)]
    stream = [(t, truth) for t, (_, truth) in enumerate(rounds)]
    experts = {f"e{i}": {t: votes[i] for t, (votes, _) in enumerate(rounds)} for i in range(4)}
    result = simulate(stream, experts, "paper-wm")
    assert result.expert_mistakes[-1, 3] == 0
    assert result.comparator_losses[-1, 3] > 0
    np.testing.assert_array_equal(result.comparator_losses[:, :3], result.expert_mistakes[:, :3])
    assert all(bound.held for bound in result.bounds.values())


@pytest.mark.parametrize(
    ("algorithm", "eta"), [("paper-wm", None), ("paper-fpl", None), ("hedge", None), ("hedge", 0.3), ("wm", 0.1)]
)
def test_state_round_trip_continues_identically(algorithm, eta):
    rounds = random_rounds(3, 5, 80)
    start = new_state(algorithm, 5, eta=eta, seed=42)
    uninterrupted, final = run(start, rounds)
    first, middle = run(start, rounds[:37])
    restored = OnlineState.from_dict(json.loads(json.dumps(middle.to_dict())))
    assert restored == middle
    rest, restored_final = run(restored, rounds[37:])
    assert first + rest == uninterrupted and restored_final == final


def test_state_is_plain_json():
    state = update(new_state("paper-fpl", 3, seed=9), [1, None, 0], 1)
    data = state.to_dict()
    assert data == {"algorithm": "fpl", "eta": 0.26, "losses": [0.0, 0.5, 1.0], "rounds": 1, "seed": 9}
    assert json.loads(json.dumps(data)) == data


def test_no_underflow_over_a_hundred_thousand_rounds():
    n_rounds = 100_000
    stream = [(t, t % 2) for t in range(n_rounds)]
    wrong = {t: 1 - t % 2 for t in range(n_rounds)}
    experts = {"wrong": wrong, "also wrong": wrong, "right": {t: t % 2 for t in range(n_rounds)}}
    result = simulate(stream, experts, "paper-wm")
    assert result.weights[-1].tolist() == [0.0, 0.0, 1.0] and result.mistakes[-1] == 1
    # naive products (1/2)^100000 would be 0/0 here; relative weights stay 1/2 each
    state = OnlineState("wm", 0.5, (1e5, 1e5))
    assert weights(state).tolist() == [0.5, 0.5]
    assert predict(state, [1, 0]).decision == 1
    for algorithm, eta in [("hedge", 0.5), ("fpl", 0.26), ("hedge", None)]:
        state = OnlineState(algorithm, eta, (1e5, 1e5 + 3, 2e5), rounds=n_rounds)
        distribution = weights(state)
        assert np.all(np.isfinite(distribution)) and distribution.sum() == pytest.approx(1)
        assert distribution[0] > distribution[1] > 0 and distribution[2] == 0
        assert 0 < predict(state, [0, 1, 1]).p_unsafe < 1


def test_simulate_counts_and_shuffles():
    stream = [("a", 1), ("b", 0), ("c", 1), ("d", 0)]
    experts = {"x": {"a": 1, "b": 1, "c": 0}, "y": {"a": 0, "b": 0, "c": 1, "d": 0}}
    result = simulate(stream, experts, "paper-wm")
    assert result.experts == ["x", "y"] and result.items == ["a", "b", "c", "d"]
    # x misses "d" (abstains), y is wrong on "a" only
    np.testing.assert_array_equal(result.expert_mistakes, [[0, 1], [1, 1], [2, 1], [2, 1]])
    np.testing.assert_array_equal(result.decisions, [1, 1, 1, 0])
    np.testing.assert_array_equal(result.mistakes, [0, 1, 1, 1])
    np.testing.assert_array_equal(result.regret, result.mistakes - result.comparator_losses.min(axis=1))
    assert result.weights.shape == (4, 2) and set(result.bounds) == {"wm", "wm-2.41"}
    shuffled = simulate(stream, experts, "paper-wm", seed=3, shuffle=True)
    assert sorted(shuffled.items) == ["a", "b", "c", "d"] and shuffled.items != result.items
    assert simulate(stream, experts, "paper-wm", seed=3, shuffle=True).items == shuffled.items
    assert shuffled.expert_mistakes[-1].tolist() == [2, 1]


def test_simulate_reports_each_algorithms_bound():
    rounds = random_rounds(8, 3, 50, abstain=0.0)
    stream = [(t, truth) for t, (_, truth) in enumerate(rounds)]
    experts = {f"e{i}": {t: votes[i] for t, (votes, _) in enumerate(rounds)} for i in range(3)}
    hedge = simulate(stream, experts, "hedge")
    assert hedge.state.eta == pytest.approx(math.sqrt(8 * math.log(3) / 50))
    assert hedge.bounds["hedge"].allowed[-1] == pytest.approx(math.sqrt(50 * math.log(3) / 2))
    fpl = simulate(stream, experts, "paper-fpl")
    best = fpl.comparator_losses.min(axis=1)
    harmonic = 1 + 1 / 2 + 1 / 3
    assert fpl.bounds["fpl"].allowed == pytest.approx(math.expm1(0.26) * best + math.exp(0.26) * harmonic / 0.26)
    wm = simulate(stream, experts, "paper-wm")
    m = wm.comparator_losses.min(axis=1)
    assert wm.bounds["wm"].allowed == pytest.approx((m * LN2 + math.log(3)) / math.log(4 / 3) - m)
    assert all(bound.held for r in (hedge, fpl, wm) for bound in r.bounds.values())


def test_plot_writes_a_png(tmp_path):
    rounds = random_rounds(2, 3, 40)
    stream = [(t, truth) for t, (_, truth) in enumerate(rounds)]
    experts = {f"guard {i}": {t: votes[i] for t, (votes, _) in enumerate(rounds)} for i in range(3)}
    for algorithm in ("paper-wm", "paper-fpl"):
        path = plot_simulation(simulate(stream, experts, algorithm), tmp_path / f"{algorithm}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: new_state("paper-wm", 3, eta=0.3), "preset fixes"),
        (lambda: new_state("wm", 3), "needs η"),
        (lambda: new_state("wm", 3, eta=1.0), "out of range"),
        (lambda: new_state("fpl", 3, eta=0), "out of range"),
        (lambda: new_state("boost", 3, eta=0.5), "unknown algorithm"),
        (lambda: new_state("hedge", 0), "at least one"),
        (lambda: predict(new_state("paper-wm", 2), [1]), "expected 2 votes"),
        (lambda: predict(new_state("paper-wm", 2), [1, "unsafe"]), "expected 2 votes"),
        (lambda: update(new_state("paper-wm", 2), [1, 0], 2), "truth"),
    ],
)
def test_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@st.composite
def streams(draw, max_rounds: int = 300):
    """N experts of random accuracy and abstention rate; truths random or chosen against the ensemble."""
    n_experts = draw(st.integers(1, 8))
    n_rounds = draw(st.integers(0, max_rounds))
    abstain = draw(st.sampled_from([0.0, 0.1, 0.5]))
    rounds = random_rounds(draw(st.integers(0, 2**32 - 1)), n_experts, n_rounds, abstain)
    return n_experts, rounds, draw(st.booleans())


def replay(state: OnlineState, rounds, adversarial: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative expected mistakes and best comparator loss; an adversary picks the less likely label."""
    expected, best = [], []
    for votes, truth in rounds:
        p_unsafe = predict(state, votes).p_unsafe
        truth = int(p_unsafe < 0.5) if adversarial else truth
        state = update(state, votes, truth)
        expected.append(abs(p_unsafe - truth))
        best.append(min(state.losses))
    return np.cumsum(expected), np.array(best)


def assert_weighted_majority(state: OnlineState, votes, decision: int) -> None:
    """Exact weighted majority, unsafe on a tie; sides within 1e-9 may go either way (double-precision sums)."""
    base = Fraction(1 - state.eta)
    voters = [(int(loss), vote) for loss, vote in zip(state.losses, votes) if vote is not None]
    least = min((k for k, _ in voters), default=0)
    unsafe = sum(base ** (k - least) for k, vote in voters if vote == 1)
    safe = sum(base ** (k - least) for k, vote in voters if vote == 0)
    if unsafe == safe:
        assert decision == 1
    elif abs(unsafe - safe) > max(unsafe, safe) / 10**9:
        assert decision == int(unsafe > safe)


@PROPERTY
@given(streams(), st.sampled_from([0.5, 0.1, 0.26, 0.75, 0.99]))
def test_weighted_majority_decisions_and_mistake_bound(stream, eta):
    n_experts, rounds, adversarial = stream
    state, mistakes = new_state("wm", n_experts, eta=eta), 0
    for votes, truth in rounds:
        decision = predict(state, votes).decision
        assert_weighted_majority(state, votes, decision)
        truth = 1 - decision if adversarial else truth
        penalties = [(decision if vote is None else vote) != truth for vote in votes]
        previous, state = state, update(state, votes, truth)
        assert state.losses == tuple(loss + penalty for loss, penalty in zip(previous.losses, penalties))
        mistakes += decision != truth
        bound = (min(state.losses) * math.log(1 / (1 - eta)) + math.log(n_experts)) / math.log(2 / (2 - eta))
        assert mistakes <= bound + 1e-9


@PROPERTY
@given(streams())
def test_hedge_expected_regret_bound(stream):
    n_experts, rounds, adversarial = stream
    n_rounds = max(len(rounds), 1)
    tuned = new_state("hedge", n_experts, horizon=n_rounds)
    expected, best = replay(tuned, rounds, adversarial)
    if rounds:
        assert expected[-1] - best[-1] <= math.sqrt(n_rounds * math.log(n_experts) / 2) + 1e-9
    expected, best = replay(new_state("hedge", n_experts), rounds, adversarial)
    t = np.arange(1, len(rounds) + 1)
    assert np.all(expected - best <= np.sqrt(2 * t * math.log(n_experts)) + math.sqrt(math.log(n_experts) / 8) + 1e-9)


@PROPERTY
@given(streams(), st.sampled_from([0.26, 0.05, 1.0]))
def test_fpl_expected_regret_bound(stream, eta):
    n_experts, rounds, adversarial = stream
    expected, best = replay(new_state("fpl", n_experts, eta=eta), rounds, adversarial)
    harmonic = sum(1 / k for k in range(1, n_experts + 1))
    assert np.all(expected <= math.exp(eta) * (best + harmonic / eta) + 1e-9)


@PROPERTY
@given(streams(max_rounds=120), st.sampled_from(["paper-wm", "hedge", "paper-fpl"]))
def test_simulated_bounds_hold(stream, algorithm):
    n_experts, rounds, _ = stream
    experts = {f"e{i}": {t: votes[i] for t, (votes, _) in enumerate(rounds)} for i in range(n_experts)}
    result = simulate([(t, truth) for t, (_, truth) in enumerate(rounds)], experts, algorithm, seed=1)
    assert result.bounds and all(bound.held for bound in result.bounds.values())
    assert len(result.mistakes) == len(rounds) and np.all(np.diff(result.expected_mistakes) >= 0)
