"""Feedback under concurrent requests: every update is applied once, in commit order, and the
stored state equals a sequential replay of the weight history (PostgreSQL, real threads)."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from moderation import online, selectors, services
from moderation.experts import ExpertAnswer
from moderation.models import Decision, EnsembleState, WeightHistory
from tests.moderation.conftest import register_guard

N = 40


def hedge_decisions(staff, count: int, seed: int = 5):
    """An anytime-Hedge ensemble of three experts and ``count`` decisions with random votes, some
    abstaining (an abstainer's loss depends on the state, so the order of updates matters)."""
    specs = [{"guard": register_guard(f"g{i}").pk} for i in range(3)]
    ensemble = services.create_ensemble(name="Concurrent", slug="concurrent", experts=specs, by=staff,
                                        algorithm="hedge", seed=seed)  # fmt: skip
    rng = random.Random(seed)
    decisions = []
    for i in range(count):
        answers = [ExpertAnswer(rng.choice([0, 1, 1, None])) for _ in range(3)]
        decisions.append(services.record_decision(ensemble, f"text {i}", None, answers))
    truths = [rng.choice(["safe", "unsafe"]) for _ in range(count)]
    return ensemble, decisions, truths


def replay(ensemble):
    state = services.initial_state(ensemble, 3)
    for votes, truth in WeightHistory.objects.filter(ensemble=ensemble).order_by("round").values_list("votes", "truth"):
        state = online.update(state, votes, truth)
    return state


def check_consistent(ensemble, decisions, truths):
    state = selectors.current_state(ensemble)
    assert state.rounds == len(decisions) == EnsembleState.objects.get(ensemble=ensemble).rounds
    history = list(WeightHistory.objects.filter(ensemble=ensemble).order_by("round"))
    assert [h.round for h in history] == list(range(1, len(decisions) + 1))
    assert {h.decision_id for h in history} == {d.pk for d in decisions}
    by_id = {d.pk: truth for d, truth in zip(decisions, truths)}
    assert all(h.truth == (by_id[h.decision_id] == "unsafe") for h in history)
    assert replay(ensemble) == state == selectors.replay_history(ensemble)
    tallies = EnsembleState.objects.get(ensemble=ensemble).tallies
    assert tallies == selectors.tallies_from_history(ensemble) and sum(tallies["abstentions"]) > 0
    # each row's weights are the state's after that round
    partial = services.initial_state(ensemble, 3)
    for row in history:
        assert row.p_unsafe == pytest.approx(online.predict(partial, row.votes).p_unsafe, abs=1e-12)
        partial = online.update(partial, row.votes, row.truth)
        assert row.weights == pytest.approx(online.weights(partial).tolist(), abs=1e-12)
    assert not Decision.objects.filter(ensemble=ensemble, feedback_label__isnull=True).exists()


@pytest.mark.django_db
def test_sequential_feedback_matches_replay(staff):
    ensemble, decisions, truths = hedge_decisions(staff, N)
    for decision, truth in zip(decisions, truths):
        services.record_feedback(decision.pk, truth, by=staff)
    check_consistent(ensemble, decisions, truths)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_feedback_loses_no_update(staff):
    ensemble, decisions, truths = hedge_decisions(staff, N)
    token = Token.objects.create(user=staff).key
    start = threading.Barrier(N)

    def post(decision_id: int, label: str) -> int:
        client = Client(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            start.wait(timeout=30)
            answer = client.post(f"/api/moderation/decisions/{decision_id}/feedback/", {"label": label},
                                 content_type="application/json")  # fmt: skip
            return answer.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(N) as pool:
        statuses = list(pool.map(post, [d.pk for d in decisions], truths))
    assert statuses == [200] * N
    check_consistent(ensemble, decisions, truths)
    # the commit order is the history's round order; another order gives another state here
    reversed_state = services.initial_state(ensemble, 3)
    for votes, truth in reversed(
        WeightHistory.objects.filter(ensemble=ensemble).order_by("round").values_list("votes", "truth")
    ):
        reversed_state = online.update(reversed_state, votes, truth)
    assert reversed_state != selectors.current_state(ensemble)

    # ten reviewers answer the same new decision at once: one round, nine conflicts
    extra = services.record_decision(ensemble, "once", None, [ExpertAnswer(1), ExpertAnswer(None), ExpertAnswer(0)])
    start = threading.Barrier(10)
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(post, [extra.pk] * 10, ["unsafe"] * 10))
    assert sorted(statuses) == [200] + [409] * 9
    assert selectors.current_state(ensemble).rounds == N + 1
    assert WeightHistory.objects.filter(decision=extra).count() == 1
