"""Full-text search of samples: a stored tsvector with a GIN index on PostgreSQL, an FTS5 table kept
in sync by triggers on SQLite. Neither is a model field: only the sample browser's search reads them."""

from django.db import migrations

# PostgreSQL: a stored tsvector column (so checking a row costs no re-parsing when the planner
# walks the primary key backwards for a page) and a GIN index on it (for rarer words). '<' and
# '>' become spaces: the parser would otherwise drop HTML tags and what they enclose.
PG_CREATE = [
    "ALTER TABLE annotation_sample ADD COLUMN IF NOT EXISTS search_document tsvector GENERATED ALWAYS AS "
    "(to_tsvector('english', translate(prompt || ' ' || coalesce(response, ''), '<>', '  '))) STORED",
    "CREATE INDEX IF NOT EXISTS sample_fulltext ON annotation_sample USING gin (search_document)",
]
PG_DROP = [
    "DROP INDEX IF EXISTS sample_fulltext",
    "ALTER TABLE annotation_sample DROP COLUMN IF EXISTS search_document",
]

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
    _run(schema_editor, PG_CREATE, SQLITE_CREATE)


def drop(apps, schema_editor):
    _run(schema_editor, PG_DROP, SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0007_export_profile")]

    operations = [migrations.RunPython(create, drop)]
