"""REST API of training: train from an export, runs (progress, cancel) and the guard registry."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from annotation.models import ExportSnapshot, Project
from annotation.permissions import require_admin

from . import selectors, services
from .models import GuardModel, TrainerKind, TrainingRun


class TrainingRunSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="blend.project.slug", read_only=True)
    export = serializers.IntegerField(source="blend.export_id", read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id", "project", "export", "blend", "kind", "base_model", "config", "status", "step", "total_steps",
            "loss", "eta_seconds", "metrics", "directory", "cancel_requested", "error", "created_at", "started_at",
            "finished_at",
        ]  # fmt: skip


class GuardModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = GuardModel
        fields = ["id", "name", "kind", "base_model", "path", "prompt_format", "run", "created_at"]


class TrainSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TrainerKind.choices, default=TrainerKind.MINILM)
    base_model = serializers.CharField(required=False, allow_blank=True, default="")
    config = serializers.DictField(required=False, default=dict)
    blend_options = serializers.DictField(required=False, default=dict)


@extend_schema(request=TrainSerializer, responses={202: TrainingRunSerializer})
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def train(request, export_id: int):
    export = get_object_or_404(ExportSnapshot.objects.select_related("project"), pk=export_id)
    require_admin(request.user, export.project)
    serializer = TrainSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    run = services.queue_training_from_export(export, by=request.user, **serializer.validated_data)
    run.refresh_from_db()
    return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=TrainingRunSerializer(many=True))
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def project_runs(request, pk: int):
    project = get_object_or_404(Project, pk=pk)
    require_admin(request.user, project)
    return Response(TrainingRunSerializer(selectors.project_training_runs(project), many=True).data)


def _run(request, run_id: int) -> TrainingRun:
    run = get_object_or_404(TrainingRun.objects.select_related("blend__project"), pk=run_id)
    require_admin(request.user, run.blend.project)
    return run


@extend_schema(responses=TrainingRunSerializer)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def run_detail(request, run_id: int):
    return Response(TrainingRunSerializer(_run(request, run_id)).data)


@extend_schema(request=None, responses=TrainingRunSerializer)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def cancel(request, run_id: int):
    run = _run(request, run_id)
    services.cancel_training_run(run, by=request.user)
    run.refresh_from_db()
    return Response(TrainingRunSerializer(run).data)


@extend_schema(responses=GuardModelSerializer(many=True))
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def guard_models(request):
    return Response(GuardModelSerializer(selectors.guard_models_for(request.user), many=True).data)
