"""REST API for taxonomies: list, read, create custom ones, new versions, prompt block."""

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from .models import Taxonomy
from .rendering import render_category_block
from .serializers import TaxonomySerializer, TaxonomyVersionSerializer
from .services import create_taxonomy, new_taxonomy_version, replace_categories


class IsAdminOrReadOnly(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS or bool(request.user and request.user.is_staff)


class TaxonomyViewSet(viewsets.ModelViewSet):
    serializer_class = TaxonomySerializer
    permission_classes = [permissions.IsAuthenticated, IsAdminOrReadOnly]
    queryset = Taxonomy.objects.prefetch_related("categories")
    http_method_names = ["get", "post", "put", "head", "options"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        taxonomy = create_taxonomy(
            slug=data["slug"],
            name=data["name"],
            description=data.get("description", ""),
            categories=data["categories"],
        )
        return Response(self.get_serializer(taxonomy).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        serializer = TaxonomyVersionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if "categories" not in serializer.validated_data:
            raise ValidationError({"categories": "required"})
        taxonomy = replace_categories(self.get_object(), serializer.validated_data["categories"])
        return Response(self.get_serializer(taxonomy).data)

    @extend_schema(request=TaxonomyVersionSerializer, responses={201: TaxonomySerializer})
    @action(detail=True, methods=["post"], url_path="new-version")
    def new_version(self, request, pk=None):
        serializer = TaxonomyVersionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            taxonomy = new_taxonomy_version(self.get_object(), **serializer.validated_data)
        return Response(self.get_serializer(taxonomy).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=inline_serializer("PromptBlock", {"block": serializers.CharField()}))
    @action(detail=True, methods=["get"], url_path="prompt-block")
    def prompt_block(self, request, pk=None):
        return Response({"block": render_category_block(self.get_object())})
