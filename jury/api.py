"""REST API of the jury: jurors, jury jobs and generation jobs (start, progress, cancel). Thin views."""

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from annotation.models import Project
from annotation.permissions import require_admin
from core.db_ranges import MAX_SMALLINT
from core.jobs import start_job
from core.outbound import OutboundRefused, check_endpoint_url

from . import generation, selectors, services
from .models import GenerationJob, JudgedPart, Juror, JuryJob


def _checked_base_url(value: str) -> str:
    """An OpenAI-compatible server's URL, if AEGIS_ENDPOINT_ALLOWED_HOSTS lets the server call it."""
    if not value:
        return value
    try:
        return check_endpoint_url(value)
    except OutboundRefused as error:
        raise serializers.ValidationError(str(error)) from None


class JurorSerializer(serializers.ModelSerializer):
    def validate_base_url(self, value: str) -> str:
        return _checked_base_url(value)

    class Meta:
        model = Juror
        fields = [
            "id",
            "name",
            "model",
            "backend",
            "base_url",
            "prompt_format",
            "max_tokens",
            "structured_output",
            "concurrency",
            "judges_prompts",
            "judges_responses",
            "active",
        ]


class JuryJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = JuryJob
        fields = [
            "id",
            "part",
            "status",
            "total",
            "done",
            "decided",
            "sent_to_humans",
            "min_category_votes",
            "cancel_requested",
            "error",
            "created_at",
            "finished_at",
        ]


class StartJobSerializer(serializers.Serializer):
    part = serializers.ChoiceField(choices=JudgedPart.choices, default=JudgedPart.RESPONSE)
    min_category_votes = serializers.IntegerField(min_value=1, max_value=MAX_SMALLINT, default=2)


@extend_schema(methods=["GET"], responses=JurorSerializer(many=True))
@extend_schema(methods=["POST"], request=JurorSerializer, responses={201: JurorSerializer})
@api_view(["GET", "POST"])
@permission_classes([permissions.IsAuthenticated])
def jurors(request, pk: int):
    project = get_object_or_404(Project, pk=pk)
    require_admin(request.user, project)
    if request.method == "POST":
        serializer = JurorSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.check_model_source(request.user, data.get("backend", "openai"), data.get("model", ""))
        taken = {"name": [f"this project already has a juror named {serializer.validated_data['name']!r}"]}
        if Juror.objects.filter(project=project, name=serializer.validated_data["name"]).exists():
            raise ValidationError(taken)
        try:
            with transaction.atomic():
                serializer.save(project=project)
        except IntegrityError:
            raise ValidationError(taken) from None
        return Response(serializer.data, status=status.HTTP_201_CREATED)
    return Response(JurorSerializer(selectors.project_jurors(project), many=True).data)


@extend_schema(methods=["GET"], responses=JuryJobSerializer(many=True))
@extend_schema(methods=["POST"], request=StartJobSerializer, responses={202: JuryJobSerializer})
@api_view(["GET", "POST"])
@permission_classes([permissions.IsAuthenticated])
def jobs(request, pk: int):
    project = get_object_or_404(Project, pk=pk)
    require_admin(request.user, project)
    if request.method == "POST":
        serializer = StartJobSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            job = services.start_jury_job(project, by=request.user, **serializer.validated_data)
            start_job(job)
        job.refresh_from_db()
        return Response(JuryJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
    return Response(JuryJobSerializer(selectors.project_jury_jobs(project), many=True).data)


def _job(request, model: type[JuryJob] | type[GenerationJob], job_id: int):
    """A jury or generation job of a project the user administers."""
    job = get_object_or_404(model.objects.select_related("project"), pk=job_id)
    require_admin(request.user, job.project)
    return job


@extend_schema(responses=JuryJobSerializer)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def job_detail(request, job_id: int):
    return Response(JuryJobSerializer(_job(request, JuryJob, job_id)).data)


@extend_schema(request=None, responses=JuryJobSerializer)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def cancel(request, job_id: int):
    job = _job(request, JuryJob, job_id)
    services.cancel_jury_job(job, by=request.user)
    job.refresh_from_db()
    return Response(JuryJobSerializer(job).data)


class GenerationJobSerializer(serializers.ModelSerializer):
    def validate_base_url(self, value: str) -> str:
        return _checked_base_url(value)

    class Meta:
        model = GenerationJob
        fields = [
            "id",
            "kind",
            "model",
            "backend",
            "base_url",
            "max_tokens",
            "concurrency",
            "strategies",
            "limit",
            "status",
            "total",
            "done",
            "failed",
            "cancel_requested",
            "error",
            "created_at",
            "finished_at",
        ]
        read_only_fields = [
            "status",
            "total",
            "done",
            "failed",
            "cancel_requested",
            "error",
            "created_at",
            "finished_at",
        ]


@extend_schema(methods=["GET"], responses=GenerationJobSerializer(many=True))
@extend_schema(methods=["POST"], request=GenerationJobSerializer, responses={202: GenerationJobSerializer})
@api_view(["GET", "POST"])
@permission_classes([permissions.IsAuthenticated])
def generation_jobs(request, pk: int):
    project = get_object_or_404(Project, pk=pk)
    require_admin(request.user, project)
    if request.method == "POST":
        serializer = GenerationJobSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            job = generation.start_generation_job(project, by=request.user, **serializer.validated_data)
            start_job(job)
        job.refresh_from_db()
        return Response(GenerationJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
    return Response(GenerationJobSerializer(selectors.project_generation_jobs(project), many=True).data)


@extend_schema(responses=GenerationJobSerializer)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def generation_job_detail(request, job_id: int):
    return Response(GenerationJobSerializer(_job(request, GenerationJob, job_id)).data)


@extend_schema(request=None, responses=GenerationJobSerializer)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def cancel_generation(request, job_id: int):
    job = _job(request, GenerationJob, job_id)
    generation.cancel_generation_job(job, by=request.user)
    job.refresh_from_db()
    return Response(GenerationJobSerializer(job).data)
