"""Reads of taxonomies: lookups by code, name or alias, and mappings."""

from dataclasses import dataclass

from django.db.models import Max

from .models import Category, Taxonomy, TaxonomyMapping

DEFAULT_TAXONOMY_SLUG = "aegis-2.0"


def get_taxonomy(slug: str, version: int | None = None) -> Taxonomy:
    """The given version of a taxonomy, or its newest version."""
    queryset = Taxonomy.objects.filter(slug=slug)
    if version is None:
        taxonomy = queryset.order_by("-version").first()
        if taxonomy is None:
            raise Taxonomy.DoesNotExist(f"no taxonomy with slug {slug!r}")
        return taxonomy
    return queryset.get(version=version)


def default_taxonomy() -> Taxonomy:
    return get_taxonomy(DEFAULT_TAXONOMY_SLUG)


def next_version(slug: str) -> int:
    return (Taxonomy.objects.filter(slug=slug).aggregate(m=Max("version"))["m"] or 0) + 1


@dataclass(frozen=True)
class CategoryIndex:
    """Resolves category codes, names and aliases (case-insensitive) to categories."""

    taxonomy: Taxonomy
    categories: tuple[Category, ...]
    by_key: dict[str, Category]

    @classmethod
    def for_taxonomy(cls, taxonomy: Taxonomy) -> "CategoryIndex":
        # .all() sorted here: a taxonomy fetched with prefetch_related("categories") needs no query
        categories = tuple(sorted(taxonomy.categories.all(), key=lambda c: c.position))
        by_key: dict[str, Category] = {}
        for category in categories:
            for key in [category.code, category.name, *category.aliases]:
                by_key.setdefault(key.strip().lower(), category)
        return cls(taxonomy, categories, by_key)

    def resolve(self, text: str) -> Category | None:
        return self.by_key.get(text.strip().lower())

    def by_code(self, code: str) -> Category:
        for category in self.categories:
            if category.code == code:
                return category
        raise KeyError(code)

    @property
    def hazard_codes(self) -> list[str]:
        return [c.code for c in self.categories if c.hazard]


def get_mapping(source: Taxonomy, target: Taxonomy) -> TaxonomyMapping:
    return TaxonomyMapping.objects.get(source=source, target=target)


def mapping_table(mapping: TaxonomyMapping) -> dict[str, list[str]]:
    """Source category code → target category codes."""
    table: dict[str, list[str]] = {}
    for pair in mapping.pairs.select_related("source").prefetch_related("targets"):
        table[pair.source.code] = [t.code for t in sorted(pair.targets.all(), key=lambda c: c.position)]
    return table


def map_categories(codes: list[str], mapping: TaxonomyMapping) -> list[str]:
    """Maps codes through a mapping, keeping first-seen order and dropping duplicates."""
    return map_codes(codes, mapping_table(mapping))


def map_codes(codes: list[str], table: dict[str, list[str]]) -> list[str]:
    """Maps codes through a mapping's table (``mapping_table``), keeping first-seen order and dropping duplicates."""
    mapped: list[str] = []
    for code in codes:
        for target in table.get(code, []):
            if target not in mapped:
                mapped.append(target)
    return mapped
