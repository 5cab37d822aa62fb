"""An import streams its samples through one open COPY on PostgreSQL (``annotation.bulk.RowStream``):
rows of other tables, new annotator accounts and checkpoints wait for the stream to be flushed."""

import json

import pytest
from django.db import connection, transaction

from annotation.importing.errors import ImportDataError
from annotation.importing.writer import CHUNKS_PER_CHECKPOINT, import_rows
from annotation.models import Annotation, FinalLabel, ImportBatch, Sample, SampleCategory
from annotation.services import import_samples

pytestmark = pytest.mark.django_db


def labelled_row(i: int) -> dict:
    """A sample whose annotators change from row to row, so that new accounts are made mid-stream."""
    return {
        "id": f"s{i}",
        "prompt": f"prompt {i}",
        "prompt_label": "unsafe" if i % 2 else "safe",
        "categories": ["S1"] if i % 2 else [],
        "annotations": [
            {"annotator": f"a{i % 7}", "prompt_label": "safe"},
            {"annotator": "b", "prompt_label": "unsafe", "categories": ["S2"]},
        ],
    }


def test_labelled_rows_streamed_across_chunks_are_all_stored_with_their_samples(project, tmp_path, settings):
    settings.AEGIS_IMPORT_BATCH_SIZE = 2
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(labelled_row(i)) + "\n" for i in range(23)), encoding="utf-8")
    batch = import_samples(project, path, adapter="generic")
    assert batch.created_count == 23
    samples = dict(Sample.objects.filter(project=project).values_list("uid", "pk"))
    assert len(samples) == 23
    for i in range(23):
        annotators = set(
            Annotation.objects.filter(sample_id=samples[f"s{i}"]).values_list("annotator__username", flat=True)
        )
        assert annotators == {f"imported:a{i % 7}", "imported:b"}
        final = FinalLabel.objects.get(sample_id=samples[f"s{i}"])
        assert final.prompt_label == ("unsafe" if i % 2 else "safe")
        codes = set(SampleCategory.objects.filter(sample_id=samples[f"s{i}"]).values_list("code", flat=True))
        assert codes == ({"S1", "S2"} if i % 2 else {"S2"})


def test_checkpoints_come_every_few_chunks_with_every_row_so_far_stored(project, tmp_path, settings):
    settings.AEGIS_IMPORT_BATCH_SIZE = 2
    rows = 6 * CHUNKS_PER_CHECKPOINT + 1
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "prompt": f"p{i}"}) + "\n" for i in range(rows)))
    batch = ImportBatch.objects.create(project=project, filename="rows.jsonl", adapter="generic", source_name="rows")
    progress, checkpoints = [], []

    def checkpoint(rows_read: int) -> None:  # a statement here fails if a COPY is still open
        checkpoints.append((rows_read, Sample.objects.filter(project=project).count()))

    with transaction.atomic():
        counts = import_rows(batch, path, on_progress=progress.append, on_checkpoint=checkpoint)
    assert counts["created_count"] == rows
    assert progress == list(range(2, rows, 2))
    every = 2 * CHUNKS_PER_CHECKPOINT
    assert checkpoints == [(n, n) for n in range(every, rows, every)]


def test_a_bad_row_after_rows_already_streamed_stores_nothing_and_frees_the_connection(project, tmp_path, settings):
    settings.AEGIS_IMPORT_BATCH_SIZE = 2
    good = [json.dumps({"id": f"r{i}", "prompt": f"p{i}"}) for i in range(7)]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join([*good, '{"id": "bad", "prompt": "p", "prompt_label": "?"}']) + "\n", encoding="utf-8")
    with pytest.raises(ImportDataError, match="line 8, field .prompt_label."):
        import_samples(project, path, adapter="generic")
    assert not Sample.objects.filter(project=project).exists()
    with connection.cursor() as cursor:  # the COPY was ended, not left open on the connection
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_file_of_one_short_chunk_reserves_only_the_ids_it_uses(project, tmp_path):
    for name in ("first", "second"):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"id": f"{name}{i}", "prompt": f"{name} {i}"}) + "\n" for i in range(3)))
        import_samples(project, path, adapter="generic")
    ids = sorted(Sample.objects.filter(project=project).values_list("pk", flat=True))
    assert ids == list(range(ids[0], ids[0] + 6))
