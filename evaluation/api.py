"""REST API of evaluation: start a run, list, detail (with the paper table), cancel, report
downloads (one run, or several compared), and the benchmark registry. Thin views."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from . import reports, selectors, services
from .benchmarks import BENCHMARKS
from .models import EvaluationRun
from .permissions import require_evaluator, require_run_access


class EvaluationRunSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.slug", read_only=True, default=None, allow_null=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = EvaluationRun
        fields = [
            "id", "name", "project", "guards", "benchmarks", "options", "status", "total", "done",
            "cancel_requested", "error", "created_by", "created_at", "started_at", "finished_at",
        ]  # fmt: skip


class EvaluationRunDetailSerializer(EvaluationRunSerializer):
    results = serializers.JSONField(read_only=True)
    table = serializers.SerializerMethodField()

    class Meta(EvaluationRunSerializer.Meta):
        fields = [*EvaluationRunSerializer.Meta.fields, "results", "table"]

    def get_table(self, run: EvaluationRun) -> dict:
        table = reports.table_for_runs([run]).to_dict()
        for row in table["rows"]:
            row.pop("cells")  # the cells are in ``results``
        return table


class StartSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    guards = serializers.ListField(
        child=serializers.JSONField(),
        help_text='[{"guard": 3}, {"juror": 5}, {"endpoint": "http://…/v1", "model": "m", "prompt_format": '
        '"nemoguard"}, {"predictions": "/path", "parser": "guardreasoner"} (staff)]',
    )
    benchmarks = serializers.ListField(
        child=serializers.JSONField(),
        help_text='["openai_moderation", {"name": "export_prompt", "export": 12}, {"name": "…", "path": "/…"} (staff)]',
    )
    options = serializers.DictField(required=False, default=dict, help_text=", ".join(services.DEFAULT_OPTIONS))


@extend_schema(methods=["GET"], responses=EvaluationRunSerializer(many=True))
@extend_schema(methods=["POST"], request=StartSerializer, responses={202: EvaluationRunSerializer})
@api_view(["GET", "POST"])
@permission_classes([permissions.IsAuthenticated])
def runs(request):
    require_evaluator(request.user)
    if request.method == "POST":
        serializer = StartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.queue_evaluation_run(by=request.user, **serializer.validated_data)
        run.refresh_from_db()
        return Response(EvaluationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
    return Response(EvaluationRunSerializer(selectors.visible_runs(request.user)[:200], many=True).data)


def _run(request, run_id: int) -> EvaluationRun:
    run = get_object_or_404(EvaluationRun.objects.select_related("project", "created_by"), pk=run_id)
    require_run_access(request.user, run)
    return run


@extend_schema(responses=EvaluationRunDetailSerializer)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def run_detail(request, run_id: int):
    return Response(EvaluationRunDetailSerializer(_run(request, run_id)).data)


@extend_schema(request=None, responses=EvaluationRunSerializer)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def cancel(request, run_id: int):
    run = _run(request, run_id)
    services.cancel_evaluation_run(run, by=request.user)
    run.refresh_from_db()
    return Response(EvaluationRunSerializer(run).data)


def report_response(runs: list[EvaluationRun], fmt: str, filename: str) -> HttpResponse:
    """A report as a download: ``md``, ``csv`` or ``json``."""
    if fmt not in reports.CONTENT_TYPES:
        raise ValidationError({"detail": f"unknown report format {fmt!r}: choose md, csv or json"})
    response = HttpResponse(reports.render(reports.table_for_runs(runs), fmt), content_type=reports.CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


AS = OpenApiParameter("as", str, enum=["md", "csv", "json"], description="report format (default md)")
REPORT = {(200, "text/markdown"): str, (200, "text/csv"): str, (200, "application/json"): dict}


@extend_schema(parameters=[AS], responses=REPORT)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def report(request, run_id: int):
    run = _run(request, run_id)
    return report_response([run], request.GET.get("as", "md"), f"evaluation-{run.pk}")


@extend_schema(
    parameters=[AS, OpenApiParameter("runs", str, description="run ids, e.g. 3,5")],
    responses=REPORT,
)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def compare(request):
    require_evaluator(request.user)
    chosen = services.runs_to_compare(request.user, request.GET.getlist("runs"))
    name = "evaluation-compare-" + "-".join(str(run.pk) for run in chosen)
    return report_response(chosen, request.GET.get("as", "md"), name)


@extend_schema(
    responses=inline_serializer(
        "Benchmark",
        {
            "name": serializers.CharField(),
            "task": serializers.CharField(),
            "positive_class": serializers.CharField(),
            "positive_values": serializers.ListField(child=serializers.CharField()),
            "description": serializers.CharField(),
            "shipped": serializers.BooleanField(),
        },
        many=True,
    )
)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def benchmarks(request):
    """The benchmark registry: name, task, positive class, description, whether it is shipped."""
    return Response(
        [
            {
                "name": b.name,
                "task": b.task.value,
                "positive_class": b.task.positive_class,
                "positive_values": sorted(value for value, positive in b.labels.items() if positive),
                "description": b.description,
                "shipped": b.shipped,
            }
            for b in BENCHMARKS.values()
        ]
    )
