"""REST API of the annotator workbench: members, batches, next item, submit, skip, flag, history,
and the agreement report."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.csvfiles import CsvWriter
from core.db_ranges import MAX_BIGINT, MAX_INT
from core.lean_api import LeanJSONView

from . import selectors, services
from .models import Assignment, Membership, Project, ProjectRole
from .permissions import require_admin, require_role
from .services import qa as qa_service
from .services.reports import agreement_report, agreement_rows


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=ProjectRole.choices)
    opted_out_categories = serializers.ListField(child=serializers.CharField(), required=False)
    daily_cap = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False, allow_null=True)
    break_reminder_minutes = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False, allow_null=True)


class BatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    sources = serializers.ListField(child=serializers.CharField(), required=False)
    sample_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_BIGINT), required=False
    )
    limit = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT, required=False)


class SubmitSerializer(serializers.Serializer):
    prompt_label = serializers.CharField()
    response_label = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    categories = serializers.ListField(child=serializers.CharField(), required=False)
    other_risks = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    time_spent_ms = serializers.IntegerField(required=False, min_value=0, max_value=MAX_INT, allow_null=True)


SUBMIT_FIELDS = SubmitSerializer().fields  # read once: the rules plain_submission applies
# How SubmitSerializer reads each text field: (blank allowed, null allowed, most characters).
PLAIN_TEXT_FIELDS = {
    name: (field.allow_blank, field.allow_null, field.max_length)
    for name, field in SUBMIT_FIELDS.items()
    if isinstance(field, serializers.CharField)
}


def plain_submission(data: Any) -> dict[str, Any] | None:
    """SubmitSerializer's validated data for a plain body (texts, a list of texts, a whole number
    or null where each is allowed), read without DRF's field machinery, which copies every field
    for each request (about 80 µs of a submission's CPU); None for anything else, which the
    serializer then reads, its errors included. A property test keeps the two the same."""
    if type(data) is not dict or "prompt_label" not in data:
        return None
    fields: dict[str, Any] = {}
    for name, value in data.items():
        if name in PLAIN_TEXT_FIELDS:
            allow_blank, allow_null, most = PLAIN_TEXT_FIELDS[name]
            text = None if value is None else _plain_text(value, allow_blank, most)
            if text is None and not (value is None and allow_null):
                return None
            fields[name] = text
        elif name == "categories":
            if type(value) is not list:
                return None
            code_field = SUBMIT_FIELDS[name].child
            codes = [_plain_text(code, code_field.allow_blank, code_field.max_length) for code in value]
            if None in codes:
                return None
            fields[name] = codes
        elif name == "time_spent_ms":
            spent = SUBMIT_FIELDS[name]
            if value is not None and not (type(value) is int and spent.min_value <= value <= spent.max_value):
                return None
            fields[name] = value
    return fields


def _plain_text(value: Any, allow_blank: bool, most: int | None) -> str | None:
    """A CharField's reading of a string (trimmed; no NUL, no lone surrogate); None otherwise."""
    if type(value) is not str:
        return None
    text = value.strip()
    if (not text and not allow_blank) or "\x00" in text or (most is not None and len(text) > most):
        return None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate
            return None
    return text


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


def _validated(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema(methods=["GET"], responses=MemberSerializer(many=True))
@extend_schema(methods=["POST"], request=MemberSerializer, responses={201: MemberSerializer(many=True)})
@api_view(["GET", "POST"])
@permission_classes([permissions.IsAuthenticated])
def members(request, pk: int):
    """Project admins list members or add a person with a role and wellbeing settings."""
    project = get_object_or_404(Project, pk=pk)
    require_admin(request.user, project)
    if request.method == "POST":
        services.add_member(project, by=request.user, **_validated(MemberSerializer, request.data))
    rows = Membership.objects.filter(project=project).select_related("user").order_by("user__username", "role")
    return Response(
        [
            {
                "username": m.user.username,
                "role": m.role,
                "opted_out_categories": m.opted_out_categories,
                "daily_cap": m.daily_cap,
                "break_reminder_minutes": m.break_reminder_minutes,
            }
            for m in rows
        ],
        status=status.HTTP_201_CREATED if request.method == "POST" else status.HTTP_200_OK,
    )


@extend_schema(request=BatchSerializer, responses={201: dict})
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def batches(request, pk: int):
    """Project admins queue a batch of samples for annotation."""
    project = get_object_or_404(Project, pk=pk)
    batch = services.create_assignment_batch(project, by=request.user, **_validated(BatchSerializer, request.data))
    return Response(
        {"id": batch.pk, "name": batch.name, "items": batch.items.count(), "k": batch.annotations_per_sample},
        status=status.HTTP_201_CREATED,
    )


def next_item_view(user, project_id: int) -> dict[str, Any]:
    """The annotator's current or next item under a lease, or ``{"no_work": reason, "progress": …}``."""
    try:
        pulled = services.pull_next_item(user, project_id)
    except services.NoWork as reason:
        pulled = reason
    return pulled_or_no_work_view(user, pulled)


def pulled_or_no_work_view(user, pulled: services.Pull | services.NoWork, *, categories: bool = True) -> dict:
    if isinstance(pulled, services.NoWork):
        membership = pulled.membership
        progress = selectors.annotator_progress(user.pk, membership.project, membership)
        return {"no_work": str(pulled), "progress": progress}
    return selectors.pulled_view(pulled, categories=categories)


@extend_schema_view(post=extend_schema(request=None, responses=dict))
class NextItem(LeanJSONView):
    """The annotator's current or next item under a lease, or ``{"no_work": reason}``."""

    def respond(self, user, data, *, pk: int):
        return next_item_view(user, pk), status.HTTP_200_OK


@extend_schema(parameters=[OpenApiParameter("before", int, description="an assignment id")], responses=list[dict])
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def my_labels(request, pk: int):
    """The caller's submitted items not yet final (they may revise them), newest first;
    ``?before=<assignment id>`` gives the next page."""
    project = get_object_or_404(Project, pk=pk)
    require_role(request.user, project, ProjectRole.ANNOTATOR)
    before = request.query_params.get("before")
    if before is not None and not (before.isdigit() and int(before) <= MAX_BIGINT):
        raise ValidationError({"before": "an assignment id"})
    return Response(selectors.revisable_assignments(request.user.pk, project, before=int(before) if before else None))


def _own(request, assignment_id: int) -> Assignment:
    assignment = get_object_or_404(Assignment.objects.select_related("sample__project"), pk=assignment_id)
    if assignment.annotator_id != request.user.pk:
        raise PermissionDenied("not your assignment")
    return assignment


@extend_schema(responses=dict)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def assignment_detail(request, assignment_id: int):
    return Response(selectors.workbench_view(_own(request, assignment_id)))


@extend_schema_view(
    post=extend_schema(
        request=SubmitSerializer,
        parameters=[
            OpenApiParameter(
                "then",
                str,
                enum=["next"],
                description="next: the answer also holds the annotator's next item under ``next``, as "
                "``/next/`` answers it less the project's categories (they never change within a project; "
                "``/next/`` carries them), so that the labelling loop is one request per item",
            )
        ],
        responses=dict,
    )
)
class Submit(LeanJSONView):
    """Submit or revise a label; the rules are checked here as in the page. With ``?then=next``
    the next item is pulled too (services.submit_and_pull_next: the label stays stored whatever
    the pull finds)."""

    def respond(self, user, data, *, assignment_id: int):
        then = self.request.GET.get("then")
        if then not in (None, "next"):
            raise ValidationError({"then": f"'next' or nothing, not {then!r}"})
        fields = plain_submission(data)
        if fields is None:
            fields = _validated(SubmitSerializer, data)
        if then:
            submission, pulled = services.submit_and_pull_next(assignment_id, user, **fields)
        else:
            submission = services.submit_annotation(assignment_id, user, **fields)
        body = {"status": "submitted", "annotation": services.annotation_snapshot(submission.annotation)}
        if then:
            body["next"] = pulled_or_no_work_view(user, pulled, categories=False)
        return body, status.HTTP_200_OK


@extend_schema(request=ReasonSerializer, responses=dict)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def skip(request, assignment_id: int):
    services.skip_assignment(assignment_id, request.user, **_validated(ReasonSerializer, request.data))
    return Response({"status": "skipped"})


@extend_schema(request=ReasonSerializer, responses=dict)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def flag(request, assignment_id: int):
    services.flag_assignment(assignment_id, request.user, **_validated(ReasonSerializer, request.data))
    return Response({"status": "flagged"})


@extend_schema(responses=list[dict])
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def history(request, assignment_id: int):
    """The audit history of the annotator's own label on this item."""
    return Response(selectors.annotation_history(_own(request, assignment_id)))


@extend_schema(responses=dict)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def dashboard(request, pk: int):
    project = get_object_or_404(Project, pk=pk)
    require_admin(request.user, project)
    return Response(selectors.project_dashboard(project))


@extend_schema(
    parameters=[OpenApiParameter("as", str, enum=["csv"], description="csv: the report as a CSV download")],
    responses={(200, "application/json"): dict, (200, "text/csv"): str},
)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def agreement(request, pk: int):
    """The agreement report (reviewers and admins); ``?as=csv`` downloads it as CSV."""
    project = get_object_or_404(Project, pk=pk)
    require_role(request.user, project, ProjectRole.ADMIN, ProjectRole.REVIEWER)
    report = agreement_report(project)
    if request.query_params.get("as") == "csv":
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="agreement-{project.slug}.csv"'
        CsvWriter(response).writerows(agreement_rows(report))
        return response
    return Response(report)


class AdjudicationSerializer(serializers.Serializer):
    prompt_label = serializers.CharField()
    response_label = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    categories = serializers.ListField(child=serializers.CharField(), required=False)


@extend_schema(
    parameters=[
        OpenApiParameter("reason", str, enum=["no-majority", "low-agreement", "flagged", "jury"]),
        OpenApiParameter("offset", int),
        OpenApiParameter("limit", int, description="at most 200"),
    ],
    responses=inline_serializer(
        "ReviewQueueItem",
        {
            "sample": serializers.DictField(),
            "reason": serializers.CharField(),
            "jury": serializers.ListField(child=serializers.DictField()),
            "annotations": serializers.ListField(child=serializers.DictField()),
        },
        many=True,
    ),
)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def review_queue(request, pk: int):
    """Samples waiting for a reviewer, with every annotation (reviewers and admins), oldest first;
    ``?reason=`` (no-majority, low-agreement, flagged, jury), ``?offset=`` and ``?limit=`` (≤ 200) page it."""
    project = get_object_or_404(Project, pk=pk)
    try:
        offset = min(MAX_BIGINT, max(0, int(request.query_params.get("offset", 0))))
        limit = min(200, max(1, int(request.query_params.get("limit", 200))))
    except ValueError:
        raise ValidationError({"offset": "offset and limit are whole numbers"}) from None
    items = services.review_queue(
        project, request.user, reason=request.query_params.get("reason", ""), offset=offset, limit=limit
    )
    return Response(items)


@extend_schema(request=AdjudicationSerializer, responses=dict)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def adjudicate(request, pk: int, sample_id: int):
    """A reviewer's final label for a sample (provenance ``adjudicated``)."""
    project = get_object_or_404(Project, pk=pk)
    final = services.adjudicate(project, sample_id, request.user, **_validated(AdjudicationSerializer, request.data))
    return Response(
        {
            "prompt_label": final.prompt_label,
            "response_label": final.response_label,
            "categories": final.categories,
            "prompt_label_source": final.prompt_label_source,
            "decided_by": request.user.username,
        }
    )


@extend_schema(responses=dict)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def qa_next(request, pk: int):
    """The next completed item to re-check, blind: the sample only, not the annotator's label."""
    project = get_object_or_404(Project, pk=pk)
    assignment = qa_service.next_qa_item(project, request.user)
    if assignment is None:
        return Response({"no_work": "nothing left to re-check"})
    sample = assignment.sample
    return Response(
        {
            "assignment": assignment.pk,
            "sample": {"id": sample.pk, "turns": sample.turns, "has_response": sample.response is not None},
        }
    )


@extend_schema(request=AdjudicationSerializer, responses={201: dict})
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def qa_check(request, pk: int, assignment_id: int):
    project = get_object_or_404(Project, pk=pk)
    check = qa_service.record_qa_check(
        project, assignment_id, request.user, **_validated(AdjudicationSerializer, request.data)
    )
    return Response({"agrees": check.agrees}, status=status.HTTP_201_CREATED)
