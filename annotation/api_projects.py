"""REST API of the annotation app: projects, samples, imports and exports. Thin views."""

from pathlib import Path

from django.db import transaction
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from core.jobs import start_job
from taxonomy.api import IsAdminOrReadOnly

from . import browse, selectors, services
from .models import ExportSnapshot, ImportBatch, Project
from .permissions import require_admin
from .serializers import (
    ExportRequestSerializer,
    ExportSnapshotSerializer,
    ImportBatchSerializer,
    ImportRequestSerializer,
    ProjectSerializer,
    SampleSerializer,
)

# An export's files as FileResponse types them by suffix: .json (the manifest, a JSON array), .csv,
# the dataset card (.md), the rest (.jsonl, .parquet).
EXPORT_FILE_TYPES = {
    "application/json": OpenApiTypes.ANY,
    "text/csv": str,
    "text/markdown": str,
    "application/octet-stream": OpenApiTypes.BINARY,
}


class ProjectViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ProjectSerializer
    permission_classes = [permissions.IsAuthenticated, IsAdminOrReadOnly]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Project.objects.none()
        return selectors.member_projects(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.create_project(created_by=self.request.user, **serializer.validated_data)

    def get_admin_project(self) -> Project:
        project = self.get_object()
        require_admin(self.request.user, project)
        return project

    @extend_schema(responses=SampleSerializer(many=True))
    @action(detail=True, methods=["get"], permission_classes=[permissions.IsAuthenticated])
    def samples(self, request, pk=None):
        """Pages of samples; with ``page_size`` or ``cursor`` (and the browser's filters), keyset
        pages newest first with ``next_cursor``."""
        project = self.get_admin_project()
        if {"page_size", "cursor"} & set(request.query_params):
            page = browse.browse_page(
                project,
                browse.SampleFilters.from_params(request.query_params),
                cursor=browse.parse_cursor(request.query_params.get("cursor")),
                page_size=browse.parse_page_size(request.query_params.get("page_size")),
            )
            return Response({"next_cursor": page.next_cursor, "results": SampleSerializer(page.rows, many=True).data})
        page = self.paginate_queryset(selectors.project_samples(project))
        return self.get_paginated_response(SampleSerializer(page, many=True).data)

    @extend_schema(methods=["GET"], responses=ImportBatchSerializer(many=True))
    @extend_schema(methods=["POST"], request=ImportRequestSerializer, responses={202: ImportBatchSerializer})
    @action(
        detail=True,
        methods=["get", "post"],
        permission_classes=[permissions.IsAuthenticated],
        parser_classes=[MultiPartParser, FormParser],
    )
    def imports(self, request, pk=None):
        project = self.get_admin_project()
        if request.method == "GET":
            page = self.paginate_queryset(selectors.project_imports(project))
            return self.get_paginated_response(ImportBatchSerializer(page, many=True).data)
        serializer = ImportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        path = services.store_upload(data["file"])
        with transaction.atomic():
            batch = services.start_import_batch(
                project,
                adapter=data["adapter"],
                filename=path.name,
                stored_path=str(path),
                source_name=data.get("source_name"),
                created_by=request.user,
            )
            start_job(batch)
        batch.refresh_from_db()
        return Response(ImportBatchSerializer(batch).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["GET"], responses=ExportSnapshotSerializer(many=True))
    @extend_schema(methods=["POST"], request=ExportRequestSerializer, responses={202: ExportSnapshotSerializer})
    @action(detail=True, methods=["get", "post"], permission_classes=[permissions.IsAuthenticated])
    def exports(self, request, pk=None):
        project = self.get_admin_project()
        if request.method == "GET":
            page = self.paginate_queryset(selectors.project_exports(project))
            return self.get_paginated_response(ExportSnapshotSerializer(page, many=True).data)
        serializer = ExportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            snapshot = services.start_export(project, created_by=request.user, **serializer.validated_data)
            start_job(snapshot)
        snapshot.refresh_from_db()
        return Response(ExportSnapshotSerializer(snapshot).data, status=status.HTTP_202_ACCEPTED)


class ImportBatchViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ImportBatchSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ImportBatch.objects.none()
        return ImportBatch.objects.filter(project__in=selectors.administered_projects(self.request.user))

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stops the import between chunks (nothing of its file is stored); one not started ends at once."""
        batch = self.get_object()
        services.cancel_import_batch(batch)
        return Response(ImportBatchSerializer(batch).data)


class ExportSnapshotViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ExportSnapshotSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ExportSnapshot.objects.none()
        return ExportSnapshot.objects.filter(project__in=selectors.administered_projects(self.request.user))

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stops the export between rows (its temporary folder is removed); one not started ends at once."""
        snapshot = self.get_object()
        services.cancel_export(snapshot)
        return Response(ExportSnapshotSerializer(snapshot).data)

    @extend_schema(responses={(200, media_type): body for media_type, body in EXPORT_FILE_TYPES.items()})
    @action(detail=True, methods=["get"], url_path=r"files/(?P<name>[A-Za-z0-9_.-]+)")
    def files(self, request, pk=None, name=None):
        snapshot = self.get_object()
        listed = set((snapshot.manifest or {}).get("files", {})) | {"manifest.json"}
        if not snapshot.succeeded or name not in listed:
            raise Http404(f"no file {name!r} in export {snapshot.pk}")
        path = Path(snapshot.directory) / name
        return FileResponse(path.open("rb"), as_attachment=True, filename=name)
