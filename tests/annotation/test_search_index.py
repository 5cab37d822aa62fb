"""Search documents on PostgreSQL: a bulk import defers them, the indexer fills them, and the search
finds pending samples all the same (migration 0011, annotation.search_index)."""

import json

import pytest
from django.db import connection

from annotation.browse import SampleFilters, browse_page
from annotation.models import Sample
from annotation.search_index import defer_search_documents, index_pending_samples, pending_search_documents
from annotation.services import import_samples

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL full-text search"),
]


def documents(project) -> dict[str, str | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT uid, search_document::text FROM annotation_sample WHERE project_id = %s", [project.pk])
        return dict(cursor.fetchall())


def uids(project, q: str) -> list[str]:
    return [s.uid for s in browse_page(project, SampleFilters(q=q), page_size=50).rows]


def write_rows(path, count: int) -> None:
    path.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "prompt": f"recipe number {i} for banana bread"}) + "\n" for i in range(count)
        ),
        encoding="utf-8",
    )


def test_an_import_leaves_every_sample_indexed(project, tmp_path):
    write_rows(tmp_path / "rows.jsonl", 30)
    import_samples(project, tmp_path / "rows.jsonl", adapter="generic")
    assert pending_search_documents(project.pk) == 0
    assert all("banana" in document for document in documents(project).values())
    assert len(uids(project, "bananas")) == 30


def test_deferred_rows_are_found_before_and_after_indexing(project):
    from django.db import transaction

    with transaction.atomic():
        defer_search_documents()
        Sample.objects.create(project=project, uid="late", prompt="a tulip poem", turns=[], content_hash="h1")
    Sample.objects.create(project=project, uid="now", prompt="another tulip poem", turns=[], content_hash="h2")
    assert documents(project)["late"] is None and "tulip" in documents(project)["now"]
    assert pending_search_documents(project.pk) == 1
    assert sorted(uids(project, "tulips")) == ["late", "now"]  # the pending one through the same function
    assert index_pending_samples(project.pk, chunk=1) == 1
    assert pending_search_documents(project.pk) == 0 and "tulip" in documents(project)["late"]
    assert sorted(uids(project, "tulips")) == ["late", "now"]
    assert index_pending_samples(project.pk) == 0


def test_changing_a_text_recomputes_its_document(project):
    sample = Sample.objects.create(project=project, uid="s", prompt="a tulip poem", turns=[])
    Sample.objects.filter(pk=sample.pk).update(response="about daffodils")
    assert "daffodil" in documents(project)["s"]
    assert uids(project, "daffodils") == ["s"]
