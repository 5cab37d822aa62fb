"""Full-text search documents of samples on PostgreSQL (migration 0011): a bulk import defers them and
``index_pending_samples`` fills them afterwards, in short transactions; until then the search computes
the document of a pending sample on the fly, so results never depend on the indexer's progress."""

from django.db import connection, transaction

from .models import Sample

INDEX_CHUNK = 2_000
MATCH_SQL = (
    '("annotation_sample"."search_document" @@ websearch_to_tsquery(\'english\', %s) OR '
    '("annotation_sample"."search_document" IS NULL AND annotation_sample_search_document('
    '"annotation_sample"."prompt", "annotation_sample"."response") @@ websearch_to_tsquery(\'english\', %s)))'
)


def defer_search_documents() -> None:
    """Inside a bulk import's transaction: rows inserted by it get no search document yet."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL aegis.defer_search_index = 'on'")


def index_pending_samples(project_id: int, *, chunk: int = INDEX_CHUNK) -> int:
    """Fills the project's missing search documents, ``chunk`` rows per transaction; returns how many.
    Safe to run twice at once or to kill: each chunk commits on its own and skips rows already done."""
    if connection.vendor != "postgresql":
        return 0
    indexed = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE annotation_sample SET search_document = annotation_sample_search_document(prompt, response) "
                "WHERE id IN (SELECT id FROM annotation_sample WHERE project_id = %s AND search_document IS NULL "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)",
                [project_id, chunk],
            )
            done = cursor.rowcount
        indexed += done
        if done < chunk:
            return indexed


def pending_search_documents(project_id: int) -> int:
    """Samples of the project whose search document the indexer has not filled yet (0 on SQLite)."""
    if connection.vendor != "postgresql":
        return 0
    return Sample.objects.filter(project_id=project_id).extra(where=["search_document IS NULL"]).count()
