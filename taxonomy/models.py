"""Versioned hazard taxonomies, their categories and the mappings between taxonomies."""

from django.db import models


class CategoryKind(models.TextChoices):
    CORE = "core", "Core"
    FINE_GRAINED = "fine_grained", "Fine-grained"
    SPECIAL = "special", "Special"


class Taxonomy(models.Model):
    """One version of a taxonomy. Frozen versions never change; edits make a new version."""

    slug = models.SlugField(max_length=80)
    version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    builtin = models.BooleanField(default=False)
    frozen = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["slug", "version"], name="taxonomy_slug_version")]
        ordering = ["slug", "version"]
        verbose_name_plural = "taxonomies"

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Category(models.Model):
    taxonomy = models.ForeignKey(Taxonomy, on_delete=models.CASCADE, related_name="categories")
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=CategoryKind.choices, default=CategoryKind.CORE)
    hazard = models.BooleanField(default=True, help_text="False only for the 'Safe' choice.")
    content_warning = models.BooleanField(
        default=False, help_text="Samples known to fall here are shown blurred behind a content warning."
    )
    definition = models.TextField(blank=True)
    aliases = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["taxonomy", "code"], name="category_taxonomy_code")]
        ordering = ["taxonomy", "position"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return f"{self.code}: {self.name}"


class TaxonomyMapping(models.Model):
    """A directed mapping from one taxonomy version's categories onto another's."""

    source = models.ForeignKey(Taxonomy, on_delete=models.CASCADE, related_name="mappings_out")
    target = models.ForeignKey(Taxonomy, on_delete=models.CASCADE, related_name="mappings_in")
    notes = models.TextField(blank=True, help_text="Where and why the mapping loses information.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "target"], name="mapping_source_target")]

    def __str__(self) -> str:
        return f"{self.source} → {self.target}"


class CategoryMappingPair(models.Model):
    mapping = models.ForeignKey(TaxonomyMapping, on_delete=models.CASCADE, related_name="pairs")
    source = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    targets = models.ManyToManyField(Category, related_name="+", blank=True)
    note = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mapping", "source"], name="pair_mapping_source")]
