"""Bad input: a clear error naming file, line and field, and nothing stored."""

import gzip
import json

import pytest

from annotation.importing import writer
from annotation.importing.errors import ImportDataError
from annotation.models import Annotation, FinalLabel, ImportBatch, Sample
from annotation.services import import_samples

pytestmark = pytest.mark.django_db

GOOD = {"id": "ok-1", "prompt": "Hello", "response": None, "prompt_label": "safe"}


def lines(*rows) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def assert_rejected(project, path, adapter, *fragments):
    before = Sample.objects.count(), Annotation.objects.count(), FinalLabel.objects.count()
    with pytest.raises(ImportDataError) as caught:
        import_samples(project, path, adapter=adapter)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert (Sample.objects.count(), Annotation.objects.count(), FinalLabel.objects.count()) == before
    assert ImportBatch.objects.filter(status="failed", error=message).exists()
    return message


def test_malformed_json_line(project, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(lines(GOOD, '{"id": "x", "prompt": "unterminated'), encoding="utf-8")
    assert_rejected(project, path, "aegis2", "bad.jsonl, line 2", "malformed JSON")


def test_missing_column_csv(project, tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text("id,text,label\n1,hi,safe\n", encoding="utf-8")
    assert_rejected(project, path, "xstest_prompts", "prompts.csv, line 1, field 'prompt'", "missing column")


def test_missing_field_jsonl(project, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(lines(GOOD, {"id": "2", "prompt_label": "safe"}), encoding="utf-8")
    assert_rejected(project, path, "aegis2", "rows.jsonl, line 2, field 'prompt'", "missing field")


def test_wrong_label_value(project, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(lines(GOOD, {**GOOD, "id": "2", "prompt": "x", "prompt_label": "maybe"}), encoding="utf-8")
    assert_rejected(project, path, "aegis2", "line 2, field 'prompt_label'", "'maybe' is not one of safe, unsafe")


def test_unknown_category(project, tmp_path):
    path = tmp_path / "rows.jsonl"
    row = {**GOOD, "id": "2", "prompt": "x", "prompt_label": "unsafe", "violated_categories": "Violence, Dragons"}
    path.write_text(lines(GOOD, row), encoding="utf-8")
    assert_rejected(project, path, "aegis2", "line 2, field 'violated_categories'", "unknown category 'Dragons'")


def test_duplicate_id_with_other_content(project, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(lines(GOOD, {**GOOD, "prompt": "Something else"}), encoding="utf-8")
    assert_rejected(project, path, "aegis2", "rows.jsonl, line 2, field 'id'", "duplicate id 'ok-1'", "line 1")


def test_duplicate_id_against_stored_sample(project, tmp_path):
    first = tmp_path / "a.jsonl"
    first.write_text(lines(GOOD), encoding="utf-8")
    import_samples(project, first, adapter="aegis2")
    second = tmp_path / "b.jsonl"
    second.write_text(lines({**GOOD, "prompt": "changed"}), encoding="utf-8")
    assert_rejected(project, second, "aegis2", "b.jsonl, line 1, field 'id'", "already in the project")


@pytest.fixture(params=["remembered", "looked up"])
def earlier_rows(request, monkeypatch):
    """Rows of earlier chunks found in memory (an empty project) or, past the bound, in the database."""
    if request.param == "looked up":
        monkeypatch.setattr(writer, "EARLIER_IN_MEMORY", 1)
    return request.param


def test_duplicate_id_across_chunks(project, tmp_path, settings, earlier_rows):
    settings.AEGIS_IMPORT_BATCH_SIZE = 2
    rows = [{**GOOD, "id": f"r{i}", "prompt": f"p{i}"} for i in range(5)] + [{**GOOD, "id": "r1", "prompt": "other"}]
    path = tmp_path / "rows.jsonl"
    path.write_text(lines(*rows), encoding="utf-8")
    assert_rejected(project, path, "aegis2", "line 6, field 'id'", "earlier in this file")


def test_same_content_across_chunks_is_counted_once(project, tmp_path, settings, earlier_rows):
    settings.AEGIS_IMPORT_BATCH_SIZE = 2
    rows = [{**GOOD, "id": f"r{i}", "prompt": f"p{i}"} for i in range(5)] + [{**GOOD, "id": "r9", "prompt": "p1"}]
    path = tmp_path / "rows.jsonl"
    path.write_text(lines(*rows), encoding="utf-8")
    batch = import_samples(project, path, adapter="aegis2")
    assert (batch.created_count, batch.duplicate_count, batch.existing_count) == (5, 1, 0)
    again = tmp_path / "again.jsonl"
    again.write_text(lines(*rows[:3], {**GOOD, "id": "new", "prompt": "new"}), encoding="utf-8")
    batch = import_samples(project, again, adapter="aegis2")  # the project holds samples now
    assert (batch.created_count, batch.duplicate_count, batch.existing_count) == (1, 0, 3)


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_empty_file(project, tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    assert_rejected(project, path, "aegis2", "empty.jsonl", "no records")


def test_header_only_csv(project, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("id,prompt,label\n", encoding="utf-8")
    assert_rejected(project, path, "xstest_prompts", "empty.csv", "no records")


def test_ten_megabyte_field(project, tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text(lines(GOOD, {**GOOD, "id": "big", "prompt": "A" * (10 * 1024 * 1024)}), encoding="utf-8")
    assert_rejected(
        project, path, "aegis2", "big.jsonl, line 2, field 'prompt'", "10,485,760 bytes", "AEGIS_IMPORT_MAX_FIELD_BYTES"
    )


def test_ten_megabyte_csv_cell(project, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("id,prompt,label\n1,hi,safe\n2," + "B" * (10 * 1024 * 1024) + ",safe\n", encoding="utf-8")
    assert_rejected(project, path, "xstest_prompts", "big.csv, line 3, field 'prompt'")


def test_wrong_encoding(project, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,prompt,label\n1,hi,safe\n2,caf\u00e9 na\u00efve,safe\n".encode("latin-1"))
    assert_rejected(project, path, "xstest_prompts", "latin1.csv, line 3", "not valid UTF-8", "0xe9")


def test_wrong_encoding_in_gzip(project, tmp_path):
    path = tmp_path / "rows.jsonl.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(lines(GOOD).encode() + b'{"id": "2", "prompt": "\xff"}\n')
    assert_rejected(project, path, "aegis2", "rows.jsonl.gz, line 2", "not valid UTF-8")


def test_not_an_object(project, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(lines(GOOD, "[1, 2]"), encoding="utf-8")
    assert_rejected(project, path, "aegis2", "line 2", "expected a JSON object")


def test_csv_row_with_too_many_values(project, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text('id,prompt,label\n1,"multi\nline",safe\n2,x,safe,extra\n', encoding="utf-8")
    assert_rejected(project, path, "xstest_prompts", "rows.csv, line 4", "4 values for 3 columns")


def test_unknown_file_type(project, tmp_path):
    path = tmp_path / "rows.xlsx"
    path.write_bytes(b"PK")
    assert_rejected(project, path, "aegis2", "rows.xlsx", "unknown file type")


def test_missing_file(project, tmp_path):
    with pytest.raises(ImportDataError, match="nope.jsonl"):
        import_samples(project, tmp_path / "nope.jsonl", adapter="aegis2")
    assert Sample.objects.count() == 0


def test_error_after_many_good_rows_stores_nothing(project, tmp_path, settings):
    settings.AEGIS_IMPORT_BATCH_SIZE = 10
    rows = [{**GOOD, "id": f"r{i}", "prompt": f"p{i}"} for i in range(55)] + [
        {**GOOD, "id": "bad", "prompt_label": "?"}
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text(lines(*rows), encoding="utf-8")
    assert_rejected(project, path, "aegis2", "line 56, field 'prompt_label'")
    assert not Sample.objects.filter(project=project).exists()
