"""Full-text search of samples: a GIN index on PostgreSQL, an FTS5 table with triggers on SQLite."""

from django.db import migrations

PG_CREATE = (
    "CREATE INDEX IF NOT EXISTS sample_fulltext ON annotation_sample USING gin "
    "(to_tsvector('english', translate(prompt || ' ' || coalesce(response, ''), '<>', '  ')))"
)
PG_DROP = "DROP INDEX IF EXISTS sample_fulltext"

# External-content FTS5 table: it stores only the index; the triggers keep it equal to
# annotation_sample on every insert (imports included), update and delete.
SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS annotation_sample_fts USING fts5("
    "prompt, response, content='annotation_sample', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS annotation_sample_fts_insert AFTER INSERT ON annotation_sample BEGIN "
    "INSERT INTO annotation_sample_fts(rowid, prompt, response) VALUES (new.id, new.prompt, new.response); END",
    "CREATE TRIGGER IF NOT EXISTS annotation_sample_fts_delete AFTER DELETE ON annotation_sample BEGIN "
    "INSERT INTO annotation_sample_fts(annotation_sample_fts, rowid, prompt, response) "
    "VALUES ('delete', old.id, old.prompt, old.response); END",
    "CREATE TRIGGER IF NOT EXISTS annotation_sample_fts_update AFTER UPDATE OF prompt, response ON annotation_sample "
    "BEGIN INSERT INTO annotation_sample_fts(annotation_sample_fts, rowid, prompt, response) "
    "VALUES ('delete', old.id, old.prompt, old.response); "
    "INSERT INTO annotation_sample_fts(rowid, prompt, response) VALUES (new.id, new.prompt, new.response); END",
    "INSERT INTO annotation_sample_fts(annotation_sample_fts) VALUES ('rebuild')",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS annotation_sample_fts_insert",
    "DROP TRIGGER IF EXISTS annotation_sample_fts_delete",
    "DROP TRIGGER IF EXISTS annotation_sample_fts_update",
    "DROP TABLE IF EXISTS annotation_sample_fts",
]


def _run(schema_editor, postgresql: list[str], sqlite: list[str]) -> None:
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": postgresql, "sqlite": sqlite}.get(vendor, []):
        schema_editor.execute(statement)


def create(apps, schema_editor):
    _run(schema_editor, [PG_CREATE], SQLITE_CREATE)


def drop(apps, schema_editor):
    _run(schema_editor, [PG_DROP], SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0006_job_status_cancelled")]

    operations = [migrations.RunPython(create, drop)]
