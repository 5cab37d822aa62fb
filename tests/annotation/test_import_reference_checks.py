"""On PostgreSQL an import's samples reference one project and one import batch: where the role may,
those foreign keys are checked once (the two rows locked as a check locks them) and the COPY skips
the per-row triggers (``annotation.bulk.RowStream``); otherwise every row is checked as before."""

import json
import os

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from annotation.bulk import RowStream, reserve_ids
from annotation.importing.writer import CHUNKS_PER_CHECKPOINT, SAMPLE_COLUMNS, import_rows
from annotation.models import ImportBatch, Sample
from annotation.services import create_project

pytestmark = pytest.mark.postgres

TRIGGER_CALLS = (
    "SELECT current_setting('session_replication_role'), "
    "coalesce(pg_stat_get_xact_function_calls('annotation_sample_keep_search_document'::regproc), 0)"
)


def write_rows(tmp_path, count: int):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "prompt": f"prompt {i}"}) + "\n" for i in range(count)))
    return path


def new_batch(project) -> ImportBatch:
    return ImportBatch.objects.create(project=project, filename="rows.jsonl", adapter="generic", source_name="rows")


def become(role: str) -> None:
    """For the rest of the test's transaction (which rolls back the role with it): a role that may
    write the tables, granted SET on session_replication_role or not, or the suite's superuser."""
    if role == "superuser":
        return
    name = f"aegis_import_{role}_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {name}")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {name}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {name}")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {name}")
        if role == "granted":
            cursor.execute(f"GRANT SET ON PARAMETER session_replication_role TO {name}")
        cursor.execute(f"SET LOCAL ROLE {name}")


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "skips_triggers"), [("superuser", True), ("granted", True), ("plain", False)])
def test_samples_skip_the_row_triggers_only_where_the_role_may(project, tmp_path, settings, role, skips_triggers):
    settings.AEGIS_IMPORT_BATCH_SIZE = 2
    rows = 2 * CHUNKS_PER_CHECKPOINT + 1
    batch = new_batch(project)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL track_functions = 'pl'")  # counts the search-document trigger's calls
    become(role)
    seen = []

    def checkpoint(rows_read: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(TRIGGER_CALLS)
            seen.append(cursor.fetchone())

    with transaction.atomic():
        counts = import_rows(batch, write_rows(tmp_path, rows), on_checkpoint=checkpoint)
    assert counts["created_count"] == rows == Sample.objects.filter(project=project).count()
    # Between two streams (the checkpoint), the role is back: later rows of other tables are checked.
    assert seen == [("origin", 0 if skips_triggers else 2 * CHUNKS_PER_CHECKPOINT)]


@pytest.mark.django_db(transaction=True)
def test_the_project_and_batch_stay_locked_against_deletion_while_samples_stream(project, tmp_path, settings):
    """What the skipped per-row checks would have done at the commit, done once when the stream opens."""
    settings.AEGIS_IMPORT_BATCH_SIZE = 2
    batch = new_batch(project)
    probes = []

    def probe(rows_read: int) -> None:  # the COPY is open: ask from a connection of our own
        with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
            for table, pk in (("annotation_project", project.pk), ("annotation_importbatch", batch.pk)):
                try:
                    other.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [pk])
                    probes.append((table, "free"))
                except psycopg.errors.LockNotAvailable:
                    probes.append((table, "locked"))

    with transaction.atomic():
        import_rows(batch, write_rows(tmp_path, 3), on_progress=probe)
    assert probes == [("annotation_project", "locked"), ("annotation_importbatch", "locked")]
    probes.clear()
    probe(0)
    assert probes == [("annotation_project", "free"), ("annotation_importbatch", "free")]
    assert Sample.objects.filter(import_batch=batch).count() == 3


@pytest.mark.django_db
def test_a_row_pointing_at_another_project_is_refused_before_it_is_streamed(project):
    other = create_project(name="Other", slug="other")
    batch = new_batch(project)
    stream = RowStream(Sample, SAMPLE_COLUMNS, constant_references={"project": project.pk, "import_batch": batch.pk})
    [sample_id] = reserve_ids(Sample, 1)
    row = (sample_id, other.pk, "u1", "[]", "p", None, "rows", "1", "0" * 64, None, "{}", batch.pk, timezone.now())
    with pytest.raises(ValueError, match="Sample.project is .*, not the .* checked"), transaction.atomic():
        try:
            stream.write([row])
        except ValueError as error:
            stream.abort(error)
            raise
    assert not Sample.objects.exists()
