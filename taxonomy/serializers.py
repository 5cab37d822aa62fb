from rest_framework import serializers

from .models import Category, Taxonomy


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["code", "name", "kind", "hazard", "definition", "aliases"]


class TaxonomySerializer(serializers.ModelSerializer):
    categories = CategorySerializer(many=True)
    # Built-in slugs carry a version-like dot (aegis-1.0), which Django's slug pattern refuses.
    slug = serializers.RegexField(r"^[-a-zA-Z0-9_.]+$", max_length=80)

    class Meta:
        model = Taxonomy
        fields = ["id", "slug", "version", "name", "description", "builtin", "frozen", "created_at", "categories"]
        read_only_fields = ["id", "version", "builtin", "frozen", "created_at"]


class TaxonomyVersionSerializer(serializers.Serializer):
    name = serializers.CharField(required=False)
    categories = CategorySerializer(many=True, required=False)
