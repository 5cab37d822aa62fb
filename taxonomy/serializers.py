from rest_framework import serializers

from .models import Category, Taxonomy


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["code", "name", "kind", "hazard", "definition", "aliases"]


class TaxonomySerializer(serializers.ModelSerializer):
    categories = CategorySerializer(many=True)

    class Meta:
        model = Taxonomy
        fields = ["id", "slug", "version", "name", "description", "builtin", "frozen", "created_at", "categories"]
        read_only_fields = ["id", "version", "builtin", "frozen", "created_at"]


class TaxonomyVersionSerializer(serializers.Serializer):
    name = serializers.CharField(required=False)
    categories = CategorySerializer(many=True, required=False)
