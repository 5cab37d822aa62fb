"""Writes of taxonomies: built-in data files, custom taxonomies, freezing and new versions."""

import json
from pathlib import Path
from typing import Any

from django.db import transaction

from core.errors import ApplicationError

from .models import Category, CategoryKind, CategoryMappingPair, Taxonomy, TaxonomyMapping
from .selectors import next_version

DATA_DIR = Path(__file__).resolve().parent / "data"


class TaxonomyError(ApplicationError):
    """A taxonomy definition or change that is not allowed."""


def validate_categories(categories: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Checks category definitions and returns them normalised."""
    if not categories:
        raise TaxonomyError(f"{where}: a taxonomy needs at least one category")
    seen: set[str] = set()
    normalised = []
    for index, raw in enumerate(categories):
        at = f"{where}, category {index + 1}"
        code = str(raw.get("code", "")).strip()
        name = str(raw.get("name", "")).strip()
        if not code or not name:
            raise TaxonomyError(f"{at}: 'code' and 'name' are required")
        for field, value in (("code", code), ("name", name)):
            if "," in value:
                raise TaxonomyError(f"{at}: {field} {value!r} must not contain a comma")
        if code in seen:
            raise TaxonomyError(f"{at}: duplicate code {code!r}")
        seen.add(code)
        kind = raw.get("kind", CategoryKind.CORE)
        if kind not in CategoryKind.values:
            raise TaxonomyError(f"{at}: kind {kind!r} is not one of {', '.join(CategoryKind.values)}")
        aliases = raw.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise TaxonomyError(f"{at}: 'aliases' must be a list of strings")
        normalised.append(
            {
                "code": code,
                "name": name,
                "kind": kind,
                "hazard": bool(raw.get("hazard", True)),
                "content_warning": bool(raw.get("content_warning", False)),
                "definition": str(raw.get("definition", "")).strip(),
                "aliases": aliases,
            }
        )
    return normalised


def _create_categories(taxonomy: Taxonomy, categories: list[dict[str, Any]]) -> None:
    Category.objects.bulk_create(
        Category(taxonomy=taxonomy, position=position, **category) for position, category in enumerate(categories)
    )


@transaction.atomic
def create_taxonomy(*, slug: str, name: str, categories: list[dict[str, Any]], description: str = "") -> Taxonomy:
    """A new custom taxonomy (version 1 of a new slug), editable until a project uses it."""
    if Taxonomy.objects.filter(slug=slug).exists():
        raise TaxonomyError(f"taxonomy {slug!r} exists already: make a new version of it instead")
    checked = validate_categories(categories, f"taxonomy {slug!r}")
    taxonomy = Taxonomy.objects.create(slug=slug, name=name, description=description, version=1)
    _create_categories(taxonomy, checked)
    return taxonomy


@transaction.atomic
def replace_categories(taxonomy: Taxonomy, categories: list[dict[str, Any]]) -> Taxonomy:
    """Replaces the categories of a taxonomy that is not frozen yet."""
    taxonomy = Taxonomy.objects.select_for_update().get(pk=taxonomy.pk)
    if taxonomy.frozen:
        raise TaxonomyError(f"{taxonomy} is frozen (in use or built in): make a new version instead")
    checked = validate_categories(categories, f"taxonomy {taxonomy.slug!r}")
    taxonomy.categories.all().delete()
    _create_categories(taxonomy, checked)
    return taxonomy


@transaction.atomic
def new_taxonomy_version(
    taxonomy: Taxonomy, *, categories: list[dict[str, Any]] | None = None, name: str | None = None
) -> Taxonomy:
    """Copies a taxonomy into its next version (with new categories if given), not frozen."""
    if categories is None:
        categories = [
            {f: getattr(c, f) for f in ("code", "name", "kind", "hazard", "content_warning", "definition", "aliases")}
            for c in taxonomy.categories.order_by("position")
        ]
    checked = validate_categories(categories, f"taxonomy {taxonomy.slug!r}")
    successor = Taxonomy.objects.create(
        slug=taxonomy.slug,
        version=next_version(taxonomy.slug),
        name=name or taxonomy.name,
        description=taxonomy.description,
    )
    _create_categories(successor, checked)
    return successor


def freeze_taxonomy(taxonomy: Taxonomy) -> None:
    if not taxonomy.frozen:
        Taxonomy.objects.filter(pk=taxonomy.pk).update(frozen=True)
        taxonomy.frozen = True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise TaxonomyError(f"{path}: line {error.lineno}: {error.msg}") from error


@transaction.atomic
def sync_builtin_taxonomies() -> list[Taxonomy]:
    """Stores every taxonomy and mapping under ``taxonomy/data`` that is not stored yet.

    A stored built-in version is never changed: a changed file must carry a new version.
    """
    created = []
    for path in sorted(DATA_DIR.glob("*.json")):
        data = _read_json(path)
        slug, version = data["slug"], int(data["version"])
        if Taxonomy.objects.filter(slug=slug, version=version).exists():
            continue
        checked = validate_categories(data["categories"], str(path))
        taxonomy = Taxonomy.objects.create(
            slug=slug,
            version=version,
            name=data["name"],
            description=data.get("description", ""),
            builtin=True,
            frozen=True,
        )
        _create_categories(taxonomy, checked)
        created.append(taxonomy)
    for path in sorted((DATA_DIR / "mappings").glob("*.json")):
        _sync_mapping(path, _read_json(path))
    return created


def _sync_mapping(path: Path, data: dict[str, Any]) -> None:
    source = Taxonomy.objects.get(slug=data["source"], version=data["source_version"])
    target = Taxonomy.objects.get(slug=data["target"], version=data["target_version"])
    mapping, created = TaxonomyMapping.objects.get_or_create(
        source=source, target=target, defaults={"notes": data.get("notes", "")}
    )
    if not created:
        return
    source_categories = {c.code: c for c in source.categories.all()}
    target_categories = {c.code: c for c in target.categories.all()}
    for pair in data["pairs"]:
        if pair["source"] not in source_categories:
            raise TaxonomyError(f"{path}: unknown source category {pair['source']!r}")
        unknown = [code for code in pair["targets"] if code not in target_categories]
        if unknown:
            raise TaxonomyError(f"{path}: unknown target categories {unknown}")
        stored = CategoryMappingPair.objects.create(
            mapping=mapping, source=source_categories[pair["source"]], note=pair.get("note", "")
        )
        stored.targets.set([target_categories[code] for code in pair["targets"]])


def sync_builtin_taxonomies_after_migrate(**kwargs: Any) -> None:
    """post_migrate hook: built-in taxonomies exist in every database, tests' included."""
    sync_builtin_taxonomies()
