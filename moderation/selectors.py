"""Reads of online moderation: ensembles a person may see, their state, history, decisions, and
the figures of the live page."""

import math
from dataclasses import dataclass

from django.db.models import QuerySet

from annotation.models import Membership, ProjectRole

from . import online
from .models import Decision, Ensemble, EnsembleState, Expert, WeightHistory
from .services import add_round, initial_state


def reviewable_ensembles(user) -> QuerySet[Ensemble]:
    """Ensembles whose log the user may read: all for staff, else their projects' (as reviewer or admin)."""
    ensembles = Ensemble.objects.select_related("project", "state")
    if user.is_staff:
        return ensembles
    projects = Membership.objects.filter(user=user, role__in=[ProjectRole.REVIEWER, ProjectRole.ADMIN]).values(
        "project"
    )
    return ensembles.filter(project__in=projects)


def experts_of(ensemble: Ensemble) -> list[Expert]:
    return list(Expert.objects.filter(ensemble=ensemble).select_related("guard", "juror"))


def current_state(ensemble: Ensemble) -> online.OnlineState:
    return online.OnlineState.from_dict(EnsembleState.objects.values_list("state", flat=True).get(ensemble=ensemble))


def replay_history(ensemble: Ensemble) -> online.OnlineState:
    """The state rebuilt from a fresh one by the weight history in round order (equals the stored
    state when no update was lost or applied twice)."""
    state = initial_state(ensemble, Expert.objects.filter(ensemble=ensemble).count())
    rows = WeightHistory.objects.filter(ensemble=ensemble).order_by("round").values_list("votes", "truth")
    for votes, truth in rows.iterator(chunk_size=2000):
        state = online.update(state, votes, truth)
    return state


def recent_decisions(ensemble: Ensemble, limit: int = 50) -> list[Decision]:
    return list(Decision.objects.filter(ensemble=ensemble).order_by("-pk")[:limit])


@dataclass(frozen=True)
class ExpertSummary:
    position: int
    name: str
    source: str
    task: str
    weight: float
    loss: float
    mistakes: int
    abstentions: int
    agreement: float | None  # with the ensemble's decision, over recent decisions where it voted


def overview(ensemble: Ensemble, *, recent: int = 500) -> dict:
    """The live page's figures: weights, per-expert mistakes and abstentions over the feedback
    rounds, ensemble mistakes (realised and expected) and regret against the best expert so far,
    and the experts' disagreement over the last ``recent`` decisions."""
    row = EnsembleState.objects.get(ensemble=ensemble)
    state = online.OnlineState.from_dict(row.state)
    distribution = online.weights(state).tolist()
    experts = experts_of(ensemble)
    n = len(experts)
    tallies = row.tallies or {}
    mistakes = tallies.get("mistakes") or [0] * n
    abstentions = tallies.get("abstentions") or [0] * n
    ensemble_mistakes = tallies.get("ensemble_mistakes", 0)
    expected = tallies.get("expected_mistakes", 0.0)
    decisions = list(
        Decision.objects.filter(ensemble=ensemble).order_by("-pk").values_list("votes", "decision")[:recent]
    )
    agree, voted = [0] * n, [0] * n
    split = contested = 0
    for votes, decision in decisions:
        cast = [entry.get("vote") for entry in votes]
        present = [vote for vote in cast if vote is not None]
        if len(present) >= 2:
            contested += 1
            split += len(set(present)) > 1
        for index, vote in enumerate(cast):
            if vote is not None:
                voted[index] += 1
                agree[index] += vote == (decision == "unsafe")
    best = min(state.losses) if state.losses else 0.0
    summaries = [
        ExpertSummary(
            expert.position,
            expert.name,
            f"guard {expert.guard.name}" if expert.guard_id else f"juror {expert.juror.name}",
            expert.get_task_display(),
            distribution[index] if index < len(distribution) else math.nan,
            state.losses[index] if index < state.n_experts else math.nan,
            mistakes[index] if index < len(mistakes) else 0,
            abstentions[index] if index < len(abstentions) else 0,
            agree[index] / voted[index] if voted[index] else None,
        )
        for index, expert in enumerate(experts)
    ]
    return {
        "state": state,
        "experts": summaries,
        "rounds": state.rounds,
        "mistakes": ensemble_mistakes,
        "expected_mistakes": expected,
        "best_loss": best,
        "regret": ensemble_mistakes - best,
        "expected_regret": expected - best,
        "decisions": Decision.objects.filter(ensemble=ensemble).count(),
        "recent": len(decisions),
        "contested": contested,
        "disagreement": split / contested if contested else None,
    }


def tallies_from_history(ensemble: Ensemble) -> dict:
    """``EnsembleState.tallies`` recounted from the weight history (a check of the running counts)."""
    tallies: dict = {}
    rows = WeightHistory.objects.filter(ensemble=ensemble).order_by("round")
    for votes, truth, predicted, p_unsafe in rows.values_list("votes", "truth", "predicted", "p_unsafe"):
        tallies = add_round(tallies, votes, truth, predicted, p_unsafe)
    return tallies


def weight_series(ensemble: Ensemble, max_points: int = 300) -> tuple[list[int], list[list[float]]]:
    """Rounds and the weights after each (round 0: the fresh state), at most ``max_points`` of
    them, evenly spaced and always with the last."""
    n = Expert.objects.filter(ensemble=ensemble).count()
    start = online.weights(initial_state(ensemble, max(n, 1))).tolist()
    last = WeightHistory.objects.filter(ensemble=ensemble).order_by("-round").values_list("round", flat=True).first()
    if not last:
        return [0], [start]
    step = max(1, math.ceil(last / max(1, max_points - 1)))
    wanted = sorted({*range(step, last + 1, step), last})
    rows = (
        WeightHistory.objects.filter(ensemble=ensemble, round__in=wanted)
        .order_by("round")
        .values_list("round", "weights")
    )
    rounds, weights = [0], [start]
    for round_number, values in rows:
        rounds.append(round_number)
        weights.append(values)
    return rounds, weights

