from rest_framework import serializers

from taxonomy.models import Taxonomy

from .exporting import EXPORT_FORMATS, SPLITS
from .importing.adapters import ADAPTERS
from .labels import NeedsCautionPolicy
from .models import ExportProfile, ExportSnapshot, FinalLabel, ImportBatch, Project, Sample


class ProjectSerializer(serializers.ModelSerializer):
    taxonomy = serializers.PrimaryKeyRelatedField(queryset=Taxonomy.objects.all(), required=False)
    needs_caution_policy = serializers.ChoiceField(choices=NeedsCautionPolicy.choices, required=False)

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "slug",
            "taxonomy",
            "guidelines",
            "annotations_per_sample",
            "needs_caution_policy",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]


class FinalLabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = FinalLabel
        fields = [
            "prompt_label",
            "prompt_label_source",
            "response_label",
            "response_label_source",
            "response_refusal",
            "categories",
        ]


class SampleSerializer(serializers.ModelSerializer):
    final_label = FinalLabelSerializer(read_only=True, allow_null=True)  # none until the sample is labelled

    class Meta:
        model = Sample
        fields = [
            "id",
            "uid",
            "turns",
            "prompt",
            "response",
            "source_name",
            "source_id",
            "reconstruction_id",
            "metadata",
            "final_label",
            "created_at",
        ]


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField()
    adapter = serializers.ChoiceField(choices=sorted(ADAPTERS))
    source_name = serializers.CharField(required=False, max_length=120)


class ImportBatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportBatch
        fields = [
            "id",
            "project",
            "adapter",
            "source_name",
            "filename",
            "status",
            "done",
            "cancel_requested",
            "attempts",
            "rows_read",
            "created_count",
            "duplicate_count",
            "existing_count",
            "error",
            "created_at",
            "finished_at",
        ]


class ExportRequestSerializer(serializers.Serializer):
    profile = serializers.ChoiceField(choices=ExportProfile.choices, required=False)
    formats = serializers.ListField(child=serializers.ChoiceField(choices=[*EXPORT_FORMATS, "json"]), required=False)
    split_ratios = serializers.DictField(child=serializers.FloatField(min_value=0, max_value=1), required=False)
    split_seed = serializers.CharField(required=False, max_length=80)
    filters = serializers.DictField(required=False)

    def validate_split_ratios(self, value):
        unknown = set(value) - set(SPLITS)
        if unknown:
            raise serializers.ValidationError(f"unknown splits {sorted(unknown)}")
        return value


class ExportSnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExportSnapshot
        fields = [
            "id",
            "project",
            "profile",
            "status",
            "formats",
            "split_ratios",
            "split_seed",
            "filters",
            "manifest",
            "error",
            "created_at",
            "finished_at",
        ]
