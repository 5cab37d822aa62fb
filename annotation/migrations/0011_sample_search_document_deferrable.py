"""PostgreSQL: the sample's search document becomes a plain column kept by a trigger, so that a bulk
import can leave it for the search indexer (annotation.search_index) instead of parsing every text
inside its transaction: ``to_tsvector`` was about 70 % of a 35,000-sample import.

Every other write keeps it current at once. A transaction that sets ``aegis.defer_search_index`` to
``on`` (only the importer does, with SET LOCAL) inserts rows whose document is NULL; the search
reads those through the same function until the indexer has filled them. SQLite is unchanged."""

from django.db import migrations

PG_FORWARD = [
    "ALTER TABLE annotation_sample DROP COLUMN IF EXISTS search_document",
    "ALTER TABLE annotation_sample ADD COLUMN search_document tsvector",
    # The one definition of a sample's document. '<' and '>' become spaces: the parser would
    # otherwise drop HTML tags and what they enclose.
    "CREATE OR REPLACE FUNCTION annotation_sample_search_document(prompt text, response text) RETURNS tsvector "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS "
    "$$ SELECT to_tsvector('english', translate(prompt || ' ' || coalesce(response, ''), '<>', '  ')) $$",
    "CREATE OR REPLACE FUNCTION annotation_sample_keep_search_document() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "IF TG_OP = 'UPDATE' OR coalesce(current_setting('aegis.defer_search_index', true), '') <> 'on' THEN "
    "NEW.search_document := annotation_sample_search_document(NEW.prompt, NEW.response); "
    "END IF; "
    "RETURN NEW; "
    "END $$",
    "CREATE TRIGGER annotation_sample_search_document BEFORE INSERT OR UPDATE OF prompt, response "
    "ON annotation_sample FOR EACH ROW EXECUTE FUNCTION annotation_sample_keep_search_document()",
    "UPDATE annotation_sample SET search_document = annotation_sample_search_document(prompt, response)",
    "CREATE INDEX sample_fulltext ON annotation_sample USING gin (search_document)",
    "CREATE INDEX sample_search_pending ON annotation_sample (project_id, id) WHERE search_document IS NULL",
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS annotation_sample_search_document ON annotation_sample",
    "DROP FUNCTION IF EXISTS annotation_sample_keep_search_document()",
    "ALTER TABLE annotation_sample DROP COLUMN IF EXISTS search_document",
    "DROP FUNCTION IF EXISTS annotation_sample_search_document(text, text)",
    "ALTER TABLE annotation_sample ADD COLUMN search_document tsvector GENERATED ALWAYS AS "
    "(to_tsvector('english', translate(prompt || ' ' || coalesce(response, ''), '<>', '  '))) STORED",
    "CREATE INDEX sample_fulltext ON annotation_sample USING gin (search_document)",
]


def _run(statements: list[str]):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("annotation", "0010_queueitem_submitted_count")]

    operations = [migrations.RunPython(_run(PG_FORWARD), _run(PG_BACKWARD))]
