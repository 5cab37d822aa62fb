"""REST API of online moderation: ask an ensemble, give feedback, read its state and log.

Token auth first (``Authorization: Token …``; an anonymous request gets 401 with
``WWW-Authenticate: Token``), session and basic auth too. Asking is rate limited per account
(scope ``moderation``, ``AEGIS_MODERATION_RATE``; counted in the ``throttle`` cache, which is
Redis when ``REDIS_URL`` is set, so every worker process shares the count).
"""

from django.conf import settings
from django.core.cache import caches
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from annotation.models import Project
from core.api_schema import errors
from core.db_ranges import MAX_BIGINT, MAX_INT, MIN_BIGINT
from core.login_throttle import ThrottledBasicAuthentication
from core.token_auth import OneStatementTokenAuthentication

from . import online, selectors, services
from .models import Algorithm, Decision, Ensemble, ExpertTask, WeightHistory

AUTHENTICATION = [OneStatementTokenAuthentication, SessionAuthentication, ThrottledBasicAuthentication]


class ModerationThrottle(UserRateThrottle):
    """Requests per account (per address when anonymous) on the asking endpoint; the rate is read
    from the settings on every request (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["moderation"]``)."""

    scope = "moderation"

    def __init__(self):  # the base class reads the rate at construction; ours is read per request
        pass

    @property
    def cache(self):
        return caches["throttle"]

    def get_rate(self):
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope)

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


class ModerationExpertSerializer(serializers.Serializer):
    guard = serializers.IntegerField(required=False, allow_null=True, max_value=MAX_BIGINT)
    juror = serializers.IntegerField(required=False, allow_null=True, max_value=MAX_BIGINT)
    task = serializers.ChoiceField(choices=ExpertTask.choices, default=ExpertTask.AUTO)
    name = serializers.CharField(required=False, max_length=100)
    options = serializers.DictField(required=False, default=dict)


class ModerationEnsembleCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=80)
    project = serializers.IntegerField(required=False, allow_null=True, max_value=MAX_BIGINT)
    algorithm = serializers.ChoiceField(choices=Algorithm.choices, default=Algorithm.PAPER_WM)
    eta = serializers.FloatField(required=False, allow_null=True)
    horizon = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_INT)
    seed = serializers.IntegerField(default=0, min_value=MIN_BIGINT, max_value=MAX_BIGINT)
    experts = ModerationExpertSerializer(many=True)


def ensemble_data(ensemble: Ensemble) -> dict:
    state = selectors.current_state(ensemble)
    weights = online.weights(state).tolist()
    experts = selectors.experts_of(ensemble)
    return {
        "id": ensemble.pk,
        "name": ensemble.name,
        "slug": ensemble.slug,
        "project": ensemble.project_id,
        "algorithm": ensemble.algorithm,
        "eta": state.eta,
        "seed": ensemble.seed,
        "active": ensemble.active,
        "rounds": state.rounds,
        "experts": [
            {
                "position": expert.position,
                "name": expert.name,
                "guard": expert.guard_id,
                "juror": expert.juror_id,
                "task": expert.task,
                "weight": weights[index],
                "loss": state.losses[index],
            }
            for index, expert in enumerate(experts)
        ],
    }


def decision_data(decision: Decision, experts: list | None = None) -> dict:
    names = [expert.name for expert in experts] if experts is not None else None
    votes = []
    for index, entry in enumerate(decision.votes):
        vote = entry.get("vote")
        votes.append(
            {
                "expert": names[index] if names else index,
                "vote": None if vote is None else ("unsafe" if vote else "safe"),
                "score": entry.get("score"),
                "categories": entry.get("categories", []),
                "error": entry.get("error"),
                "weight": decision.weights[index],
            }
        )
    return {
        "decision_id": decision.pk,
        "decision": decision.decision,
        "p_unsafe": decision.p_unsafe,
        "categories": decision.categories,
        "votes": votes,
        "weights": {vote["expert"]: vote["weight"] for vote in votes} if names else decision.weights,
        "round": decision.state_round,
        "latency_ms": round(decision.latency_ms, 3),
        "feedback": decision.feedback_label,
        "created_at": decision.created_at.isoformat(),
    }


ENSEMBLE_SCHEMA = inline_serializer(
    "ModerationEnsemble", {"id": serializers.IntegerField(), "slug": serializers.CharField()}
)


@extend_schema(methods=["GET"], responses=ENSEMBLE_SCHEMA.__class__(many=True))
@extend_schema(
    methods=["POST"], request=ModerationEnsembleCreateSerializer, responses={201: ENSEMBLE_SCHEMA, **errors(404)}
)
@api_view(["GET", "POST"])
@authentication_classes(AUTHENTICATION)
@permission_classes([IsAuthenticated])
def ensembles(request):
    """GET: the ensembles whose log you review. POST: a new ensemble (staff, or the project's admins)."""
    if request.method == "GET":
        return Response([ensemble_data(e) for e in selectors.reviewable_ensembles(request.user)])
    serializer = ModerationEnsembleCreateSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    project = get_object_or_404(Project, pk=data.pop("project")) if data.get("project") else None
    data.pop("project", None)
    ensemble = services.create_ensemble(**data, project=project, by=request.user)
    return Response(ensemble_data(ensemble), status=status.HTTP_201_CREATED)


class ModerationRequestSerializer(serializers.Serializer):
    prompt = serializers.CharField(trim_whitespace=False, max_length=settings.AEGIS_MODERATION_MAX_CHARS)
    response = serializers.CharField(
        required=False, allow_null=True, trim_whitespace=False, max_length=settings.AEGIS_MODERATION_MAX_CHARS
    )


@extend_schema(methods=["GET"], responses=ENSEMBLE_SCHEMA)
@extend_schema(
    methods=["POST"],
    request=ModerationRequestSerializer,
    responses={
        200: inline_serializer(
            "ModerationDecision",
            {
                "decision_id": serializers.IntegerField(),
                "decision": serializers.ChoiceField(choices=["safe", "unsafe"]),
                "p_unsafe": serializers.FloatField(),
                "categories": serializers.ListField(child=serializers.CharField()),
                "votes": serializers.ListField(child=serializers.DictField()),
                "weights": serializers.DictField(child=serializers.FloatField()),
            },
        ),
        **errors(409),  # the ensemble is paused
    },
)
@api_view(["GET", "POST"])
@authentication_classes(AUTHENTICATION)
@permission_classes([IsAuthenticated])
@throttle_classes([ModerationThrottle])
def moderate(request, slug: str):
    """POST {prompt, response?}: the ensemble's decision (any signed-in account; rate limited).
    GET: the ensemble's experts, weights and rounds (its reviewers)."""
    ensemble = get_object_or_404(Ensemble.objects.select_related("project"), slug=slug)
    if request.method == "GET":
        services.require_reviewer(request.user, ensemble)
        return Response(ensemble_data(ensemble))
    serializer = ModerationRequestSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    experts = selectors.experts_of(ensemble)
    decision = services.moderate(
        ensemble,
        serializer.validated_data["prompt"],
        serializer.validated_data.get("response"),
        by=request.user,
        experts=experts,
    )
    return Response(decision_data(decision, experts))


class ModerationFeedbackSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="safe, unsafe or needs_caution (by the project's policy)")


@extend_schema(
    request=ModerationFeedbackSerializer,
    responses={
        200: inline_serializer(
            "ModerationFeedbackResult",
            {
                "decision_id": serializers.IntegerField(),
                "label": serializers.CharField(),
                "round": serializers.IntegerField(),
                "weights": serializers.ListField(child=serializers.FloatField()),
            },
        ),
        **errors(409),  # the decision has feedback already
    },
)
@api_view(["POST"])
@authentication_classes(AUTHENTICATION)
@permission_classes([IsAuthenticated])
def feedback(request, decision_id: int):
    """The true label of a decision (reviewers and admins of the ensemble's project, staff)."""
    get_object_or_404(Decision, pk=decision_id)
    serializer = ModerationFeedbackSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    history = services.record_feedback(decision_id, serializer.validated_data["label"], by=request.user)
    return Response(
        {
            "decision_id": decision_id,
            "label": "unsafe" if history.truth else "safe",
            "round": history.round,
            "predicted": "unsafe" if history.predicted else "safe",
            "weights": history.weights,
        }
    )


def _reviewed(request, slug: str) -> Ensemble:
    ensemble = get_object_or_404(Ensemble.objects.select_related("project"), slug=slug)
    services.require_reviewer(request.user, ensemble)
    return ensemble


@extend_schema(responses=inline_serializer("ModerationDecisionPage", {"results": serializers.ListField()}))
@api_view(["GET"])
@authentication_classes(AUTHENTICATION)
@permission_classes([IsAuthenticated])
def decisions(request, slug: str):
    """The decision log, newest first (paginated; ``?pending=1``: only those without feedback)."""
    ensemble = _reviewed(request, slug)
    rows = Decision.objects.filter(ensemble=ensemble).order_by("-pk")
    if request.query_params.get("pending") in ("1", "true"):
        rows = rows.filter(feedback_label__isnull=True)
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(rows, request)
    experts = selectors.experts_of(ensemble)
    results = [
        {**decision_data(decision, experts), "prompt": decision.prompt, "response": decision.response}
        for decision in page
    ]
    return paginator.get_paginated_response(results)


@extend_schema(responses=inline_serializer("ModerationHistoryPage", {"results": serializers.ListField()}))
@api_view(["GET"])
@authentication_classes(AUTHENTICATION)
@permission_classes([IsAuthenticated])
def history(request, slug: str):
    """The weight updates in round order (paginated)."""
    ensemble = _reviewed(request, slug)
    rows = WeightHistory.objects.filter(ensemble=ensemble).order_by("round")
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(rows, request)
    results = [
        {
            "round": row.round,
            "decision_id": row.decision_id,
            "votes": row.votes,
            "truth": row.truth,
            "predicted": row.predicted,
            "p_unsafe": row.p_unsafe,
            "weights": row.weights,
            "losses": row.losses,
            "created_at": row.created_at.isoformat(),
        }
        for row in page
    ]
    return paginator.get_paginated_response(results)
