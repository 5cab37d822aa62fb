"""Writes of online moderation: ensembles, decisions and feedback.

A decision reads the ensemble's state without a lock (deciding never changes it) and stores the
experts' votes with it. Feedback on a decision is one round of the online algorithm: under a
row lock on the ensemble's state (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write
transactions are already serial), it re-reads the decision, updates the state with the votes
stored at decision time and the true label, writes the next ``WeightHistory`` row and marks the
decision. Concurrent feedback therefore applies one round at a time, in commit order, and loses
nothing; replaying the history from a fresh state gives the stored state exactly.
"""

import hashlib
import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.labels import FINAL_LABEL_SOURCES, SafetyLabel, apply_needs_caution_policy, parse_safety_label
from annotation.models import FinalLabel, Project, ProjectRole, Sample
from annotation.permissions import project_roles, require_admin
from core.errors import ApplicationError
from guards.runners.factory import GUARD_OPTIONS

from . import online
from .experts import ExpertAnswer, ask_experts
from .models import Algorithm, Decision, Ensemble, EnsembleState, Expert, ExpertTask, WeightHistory

RESERVED_SLUGS = {"decisions", "ensembles"}  # taken by the API's own paths


class ModerationError(ApplicationError):
    """A request the ensemble cannot take (bad settings, bad label); answered 400."""


class StateConflict(ModerationError):
    """The request clashes with the ensemble's state (paused, feedback given already); answered 409."""

    status_code = 409


def content_hash(prompt: str, response: str | None) -> str:
    return hashlib.sha256(json.dumps([prompt, response], ensure_ascii=False).encode()).hexdigest()


def can_review(user, ensemble: Ensemble) -> bool:
    """Reviewers and admins of the ensemble's project, and staff, see its log and give feedback."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    if ensemble.project_id is None:
        return False
    return bool(project_roles(user, ensemble.project) & {ProjectRole.REVIEWER, ProjectRole.ADMIN})


def require_reviewer(user, ensemble: Ensemble) -> None:
    if not can_review(user, ensemble):
        where = f"project {ensemble.project.slug!r}" if ensemble.project_id else "the site (staff)"
        raise PermissionDenied(f"{user} is not a reviewer or admin of {where}")


def initial_state(ensemble: Ensemble, n_experts: int) -> online.OnlineState:
    try:
        return online.new_state(
            ensemble.algorithm, n_experts, eta=ensemble.eta, horizon=ensemble.horizon, seed=ensemble.seed
        )
    except ValueError as error:
        raise ModerationError(str(error)) from None


def _expert_rows(ensemble: Ensemble, specs: Sequence[dict]) -> list[Expert]:
    """Experts from ``{"guard": id}`` or ``{"juror": id}`` specs with optional ``task``, ``name`` and
    (guards) ``options`` for ``training.runners.runner_for_guard``."""
    from jury.models import Juror
    from training.models import GuardModel

    if not specs:
        raise ModerationError("an ensemble needs at least one expert")
    rows = []
    for position, spec in enumerate(specs):
        if not isinstance(spec, dict) or (spec.get("guard") is None) == (spec.get("juror") is None):
            raise ModerationError(f"expert {position + 1}: give exactly one of 'guard' or 'juror' (an id)")
        task = spec.get("task") or ExpertTask.AUTO
        if task not in ExpertTask.values:
            raise ModerationError(f"expert {position + 1}: task {task!r} is not one of {', '.join(ExpertTask.values)}")
        guard = juror = None
        if spec.get("guard") is not None:
            guard = GuardModel.objects.filter(pk=spec["guard"]).first()
            if guard is None:
                raise ModerationError(f"expert {position + 1}: no guard model {spec['guard']!r}")
        else:
            juror = Juror.objects.filter(pk=spec["juror"]).first()
            if juror is None:
                raise ModerationError(f"expert {position + 1}: no juror {spec['juror']!r}")
            if ensemble.project_id is not None and juror.project_id != ensemble.project_id:
                raise ModerationError(f"expert {position + 1}: juror {juror.name} belongs to another project")
        options = spec.get("options") or {}
        if not isinstance(options, dict):
            raise ModerationError(f"expert {position + 1}: options must be an object")
        unknown = sorted(set(options) - GUARD_OPTIONS) if guard else sorted(options)
        if unknown:
            known = ", ".join(sorted(GUARD_OPTIONS)) if guard else "none for jurors"
            raise ModerationError(f"expert {position + 1}: unknown options {', '.join(unknown)} ({known})")
        name = str(spec.get("name") or (guard.name if guard else f"juror:{juror.name}"))[:100]
        rows.append(
            Expert(
                ensemble=ensemble, position=position, name=name, guard=guard, juror=juror, task=task, options=options
            )
        )
    names = [row.name for row in rows]
    if len(set(names)) != len(names):
        raise ModerationError(f"expert names must differ within an ensemble: {names}")
    return rows


@transaction.atomic
def create_ensemble(
    *,
    name: str,
    slug: str,
    experts: Sequence[dict],
    by,
    algorithm: str = Algorithm.PAPER_WM,
    eta: float | None = None,
    horizon: int | None = None,
    seed: int = 0,
    project: Project | None = None,
) -> Ensemble:
    """An ensemble with its experts in order and a fresh state (staff, or the project's admins)."""
    if project is not None:
        require_admin(by, project)
    elif not (by.is_authenticated and by.is_staff):
        raise PermissionDenied("only staff create ensembles outside a project")
    if algorithm not in Algorithm.values:
        raise ModerationError(f"algorithm {algorithm!r} is not one of {', '.join(Algorithm.values)}")
    if slug in RESERVED_SLUGS:
        raise ModerationError(f"the slug {slug!r} is reserved")
    if Ensemble.objects.filter(slug=slug).exists():
        raise ModerationError(f"an ensemble with the slug {slug!r} exists")
    ensemble = Ensemble(
        name=name, slug=slug, project=project, algorithm=algorithm, eta=eta, horizon=horizon, seed=seed, created_by=by
    )
    try:
        ensemble.full_clean()
    except ValidationError as error:
        raise ModerationError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
    rows = _expert_rows(ensemble, experts)
    state = initial_state(ensemble, len(rows))
    ensemble.save()
    Expert.objects.bulk_create(rows)
    EnsembleState.objects.create(ensemble=ensemble, state=state.to_dict(), rounds=0)
    return ensemble


def restart_state(ensemble: Ensemble) -> EnsembleState:
    """A fresh state for the ensemble's current experts and settings; only before any decision
    (the admin calls this after experts are edited). Later, a change of experts is a new ensemble."""
    if Decision.objects.filter(ensemble=ensemble).exists():
        raise StateConflict(f"ensemble {ensemble.slug} has decisions: make a new ensemble to change its experts")
    count = Expert.objects.filter(ensemble=ensemble).count()
    state = initial_state(ensemble, max(count, 1))
    row, _ = EnsembleState.objects.update_or_create(
        ensemble=ensemble, defaults={"state": state.to_dict(), "rounds": 0, "tallies": {}}
    )
    return row


def ordered_categories(experts: Sequence[Expert], answers: Sequence[ExpertAnswer], weights: Sequence[float]):
    """Categories named by experts that voted unsafe, heaviest total weight first."""
    mass: dict[str, float] = {}
    for answer, weight in zip(answers, weights):
        if answer.vote == 1:
            for category in dict.fromkeys(answer.categories):
                mass[category] = mass.get(category, 0.0) + weight
    return sorted(mass, key=lambda category: -mass[category])


def moderate(
    ensemble: Ensemble, prompt: str, response: str | None = None, *, by=None, experts: Sequence[Expert] | None = None
) -> Decision:
    """Asks every expert, combines their votes with the current weights and logs the decision."""
    started = time.perf_counter()
    if not ensemble.active:
        raise StateConflict(f"ensemble {ensemble.slug} is paused")
    if experts is None:
        experts = list(Expert.objects.filter(ensemble=ensemble).select_related("guard", "juror"))
    answers = ask_experts(experts, prompt, response)
    return record_decision(ensemble, prompt, response, answers, experts=experts, by=by, started=started)


def record_decision(
    ensemble: Ensemble,
    prompt: str,
    response: str | None,
    answers: Sequence[ExpertAnswer],
    *,
    experts: Sequence[Expert] | None = None,
    by=None,
    started: float | None = None,
) -> Decision:
    """The ensemble's decision on given expert answers, logged. Hedge and FPL draw with a seed of
    their own per decision (kept with it), so requests between two feedbacks are independent."""
    started = time.perf_counter() if started is None else started
    stored = EnsembleState.objects.values_list("state", flat=True).get(ensemble=ensemble)
    state = online.OnlineState.from_dict(stored)
    votes = [answer.vote for answer in answers]
    if len(votes) != state.n_experts:
        raise ModerationError(f"{len(votes)} answers for an ensemble of {state.n_experts} experts")
    draw_seed = secrets.randbits(62)
    prediction = online.predict(replace(state, seed=draw_seed), votes)
    unsafe = prediction.decision == 1
    experts = experts if experts is not None else list(Expert.objects.filter(ensemble=ensemble))
    categories = ordered_categories(experts, answers, prediction.weights) if unsafe else []
    return Decision.objects.create(
        ensemble=ensemble,
        prompt=prompt,
        response=response,
        content_hash=content_hash(prompt, response),
        votes=[answer.as_dict() for answer in answers],
        weights=list(prediction.weights),
        state_round=state.rounds,
        draw_seed=draw_seed,
        decision=SafetyLabel.UNSAFE if unsafe else SafetyLabel.SAFE,
        p_unsafe=prediction.p_unsafe,
        leader=prediction.leader,
        categories=categories,
        latency_ms=(time.perf_counter() - started) * 1000,
        requested_by=by if by is not None and by.is_authenticated else None,
    )


def binary_label(label: str, ensemble: Ensemble) -> str:
    """safe/unsafe; Needs Caution follows the project's policy (unsafe without a project)."""
    try:
        value = parse_safety_label(label).value
    except ValueError as error:
        raise ModerationError(f"label: {error}") from None
    policy = ensemble.project.needs_caution_policy if ensemble.project_id else SafetyLabel.UNSAFE
    return apply_needs_caution_policy(value, policy)


def record_feedback(
    decision_id: int, label: str, *, by=None, source: str = "reviewer", sample: Sample | None = None
) -> WeightHistory:
    """The true label of a decision: one round of the online algorithm, applied under the state's
    row lock. ``by`` None is the system (final labels); a person must review the ensemble."""
    decision = Decision.objects.select_related("ensemble__project").filter(pk=decision_id).first()
    if decision is None:
        raise ModerationError(f"no decision {decision_id}")
    ensemble = decision.ensemble
    if by is not None:
        require_reviewer(by, ensemble)
    truth = int(binary_label(label, ensemble) == SafetyLabel.UNSAFE)
    try:
        with transaction.atomic():
            row = EnsembleState.objects.select_for_update().get(ensemble_id=ensemble.pk)
            current = Decision.objects.only("pk", "votes", "feedback_label").get(pk=decision_id)
            if current.feedback_label:
                raise StateConflict(f"decision {decision_id} has feedback already ({current.feedback_label})")
            history = _apply_round(row, current, truth)
            Decision.objects.filter(pk=decision_id).update(
                feedback_label=SafetyLabel.UNSAFE if truth else SafetyLabel.SAFE,
                feedback_source=source,
                feedback_by=by,
                feedback_sample=sample,
                feedback_at=timezone.now(),
            )
    except IntegrityError:  # a second writer without the lock (cannot happen through this module)
        raise StateConflict(f"decision {decision_id} has feedback already") from None
    return history


def _apply_round(row: EnsembleState, decision: Decision, truth: int) -> WeightHistory:
    state = online.OnlineState.from_dict(row.state)
    votes = decision.vote_vector
    before = online.predict(state, votes)
    after = online.update(state, votes, truth)
    history = WeightHistory.objects.create(
        ensemble_id=row.ensemble_id,
        round=after.rounds,
        decision=decision,
        votes=votes,
        truth=truth,
        predicted=before.decision,
        p_unsafe=before.p_unsafe,
        weights=online.weights(after).tolist(),
        losses=list(after.losses),
    )
    EnsembleState.objects.filter(pk=row.pk).update(
        state=after.to_dict(),
        rounds=after.rounds,
        tallies=add_round(row.tallies, votes, truth, before.decision, before.p_unsafe),
        updated_at=timezone.now(),
    )
    return history


def add_round(tallies: dict, votes: Sequence[int | None], truth: int, predicted: int, p_unsafe: float) -> dict:
    """The running counts after one more feedback round (see ``EnsembleState.tallies``)."""
    n = len(votes)
    mistakes = list(tallies.get("mistakes") or [0] * n)
    abstentions = list(tallies.get("abstentions") or [0] * n)
    for index, vote in enumerate(votes):
        if vote is None:
            abstentions[index] += 1
        elif vote != truth:
            mistakes[index] += 1
    return {
        "mistakes": mistakes,
        "abstentions": abstentions,
        "ensemble_mistakes": tallies.get("ensemble_mistakes", 0) + int(predicted != truth),
        "expected_mistakes": tallies.get("expected_mistakes", 0.0) + abs(p_unsafe - truth),
    }


def _final_truth(final: FinalLabel, decision: Decision, policy: str, sources: Iterable[str]) -> str | None:
    """The final label of the part the decision judged, if it comes from one of ``sources``."""
    if decision.response is None:
        label, source = final.prompt_label, final.prompt_label_source
    else:
        label, source = final.response_label, final.response_label_source
    if label is None or source not in set(sources):
        return None
    return apply_needs_caution_policy(label, policy)


def feedback_from_final_label(sample: Sample, *, sources: Iterable[str] = FINAL_LABEL_SOURCES) -> list[WeightHistory]:
    """Feeds a sample's final label (by default only a human or adjudicated one) back to every
    decision, without feedback yet, of an ensemble of the sample's project on the same prompt
    (prompt-only decisions take the prompt label) or prompt and response (the response label).

    Call it after a final label is set (annotation's ``finalize_sample`` and ``adjudicate``), or
    sweep a project with ``feedback_from_final_labels`` / ``manage.py moderation_feedback``."""
    final = FinalLabel.objects.filter(sample=sample).first()
    if final is None:
        return []
    sources = tuple(sources)
    hashes = [content_hash(sample.prompt, None)]
    if sample.response is not None:
        hashes.append(content_hash(sample.prompt, sample.response))
    pending = Decision.objects.filter(
        ensemble__project_id=sample.project_id, content_hash__in=hashes, feedback_label__isnull=True
    ).order_by("pk")
    applied = []
    for decision in pending:
        if decision.prompt != sample.prompt or decision.response not in (None, sample.response):
            continue
        label = _final_truth(final, decision, sample.project.needs_caution_policy, sources)
        if label is None:
            continue
        try:
            applied.append(record_feedback(decision.pk, label, source="final_label", sample=sample))
        except StateConflict:
            continue
    return applied


def feedback_from_final_labels(project: Project, *, sources: Iterable[str] = FINAL_LABEL_SOURCES) -> int:
    """Every pending decision of the project's ensembles that matches a labelled sample; the count."""
    pending = set(
        Decision.objects.filter(ensemble__project=project, feedback_label__isnull=True).values_list(
            "content_hash", flat=True
        )
    )
    if not pending:
        return 0
    applied = 0
    samples = Sample.objects.filter(project=project, final_label__isnull=False).only("pk", "prompt", "response")
    for sample in samples.iterator(chunk_size=2000):
        keys = {content_hash(sample.prompt, None), content_hash(sample.prompt, sample.response)}
        if keys & pending:
            sample.project = project
            applied += len(feedback_from_final_label(sample, sources=sources))
    return applied
