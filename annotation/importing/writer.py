"""Writing an import: parse records through the adapter, de-duplicate, insert in chunks."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from taxonomy.datasets import RowError

from ..bulk import RowStream, db_datetime, insert_rows, prefer_indexes, reserve_ids
from ..models import Annotation, FinalLabel, ImportBatch, Sample, SampleCategory
from .adapters import AdapterContext, get_adapter
from .annotators import annotator_name_problem, imported_username
from .errors import ImportDataError, Location
from .readers import columns_of, read_records
from .records import SampleRecord, prompt_and_response


def import_rows(
    batch: ImportBatch,
    path: Path,
    *,
    on_progress: Callable[[int], None] | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
    map_annotators: bool = False,
) -> dict[str, int]:
    """Imports the file into the batch's project; call inside a transaction. Returns the counts.
    ``on_progress(rows_read)`` is called after each chunk is handed to the database (it must run no
    statement: the chunk may still be streaming in); ``on_checkpoint(rows_read)`` every
    CHUNKS_PER_CHECKPOINT chunks, once all rows so far are stored (it may query, and raise to stop)."""
    adapter = get_adapter(batch.adapter)
    project = batch.project
    columns = columns_of(path, batch.filename)
    if columns is not None:
        missing = [c for c in adapter.required_columns if c not in columns]
        if missing:
            raise ImportDataError(
                f"missing column {', '.join(repr(c) for c in missing)} (the file has: {', '.join(columns)})",
                Location(batch.filename, line=1),
                missing[0],
            )
    prefer_indexes()
    ctx = AdapterContext.for_taxonomy(project.taxonomy, filename=batch.filename)
    pending: list[tuple[Location, SampleRecord]] = []
    chunks = 0
    with _BatchWriter(batch, map_annotators=map_annotators) as writer:
        for index, (location, raw) in enumerate(
            read_records(path, display_name=batch.filename),
            start=1,
        ):
            writer.rows_read += 1
            try:
                records = adapter.parse(raw, index, ctx)
            except RowError as error:
                raise ImportDataError(error.message, location, error.field) from None
            pending.extend((location, record) for record in records)
            if len(pending) >= settings.AEGIS_IMPORT_BATCH_SIZE:
                writer.write(pending)
                pending = []
                chunks += 1
                if on_progress is not None:
                    on_progress(writer.rows_read)
                if chunks % CHUNKS_PER_CHECKPOINT == 0 and on_checkpoint is not None:
                    writer.flush()
                    on_checkpoint(writer.rows_read)
        writer.write(pending)
    return {
        "rows_read": writer.rows_read,
        "created_count": writer.created,
        "duplicate_count": writer.duplicates,
        "existing_count": writer.existing,
    }


CHUNKS_PER_CHECKPOINT = 5  # chunks streamed between two checkpoints (a cancel is noticed at one)
EARLIER_IN_MEMORY = 200_000  # uids and content hashes of this import remembered (about 50 MB at most)

SAMPLE_COLUMNS = (
    "id",
    "project",
    "uid",
    "turns",
    "prompt",
    "response",
    "source_name",
    "source_id",
    "content_hash",
    "reconstruction_id",
    "metadata",
    "import_batch",
    "created_at",
)
FINAL_LABEL_COLUMNS = (
    "sample",
    "prompt_label",
    "prompt_label_source",
    "response_label",
    "response_label_source",
    "response_refusal",
    "categories",
    "import_batch",
    "updated_at",
)
ANNOTATION_COLUMNS = (
    "sample",
    "annotator",
    "prompt_label",
    "response_label",
    "response_refusal",
    "categories",
    "other_risks",
    "comment",
    "import_batch",
    "created_at",
    "updated_at",
)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class _BatchWriter:
    """Writes chunks of records; de-duplicates by content against the chunk and the database.

    Samples stream into the database through one open COPY (``RowStream``) while the next chunk is
    parsed; their final labels, annotations and categories wait in memory until the stream is
    closed by ``flush()``, which happens before any statement (a lookup, the next block of
    reserved ids, a new annotator account), at each checkpoint and at the end.

    Into a project that held no samples when the import began, the only rows a lookup could find
    are this import's own, so their uids and content hashes are remembered instead of looked up
    (two queries a chunk were a fifth of a 35k import), up to EARLIER_IN_MEMORY of them; past
    that, and into a project with samples, the database is asked. A rival import committing into
    the empty project meanwhile still cannot slip a duplicate in: the unique constraints refuse it.
    """

    def __init__(self, batch: ImportBatch, *, map_annotators: bool = False):
        self.batch = batch
        self.map_annotators = map_annotators
        self.project = batch.project
        self.rows_read = self.created = self.duplicates = self.existing = 0
        self.annotator_ids: dict[str, int] = {}
        empty = not Sample.objects.filter(project=self.project).exists()
        self.earlier: tuple[set[str], set[str]] | None = (set(), set()) if empty else None
        self.samples = RowStream(
            Sample, SAMPLE_COLUMNS, constant_references={"project": self.project.pk, "import_batch": batch.pk}
        )
        self.finals: list[tuple] = []
        self.annotations: list[tuple] = []
        self.known: set[tuple[int, str]] = set()
        self.ids: list[int] = []

    def __enter__(self) -> "_BatchWriter":
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error is None:
            self.flush()
        else:
            self.samples.abort(error)

    def flush(self) -> None:
        """Ends the samples' stream and writes the rows waiting in memory; the connection is free after."""
        self.samples.close()
        for model, columns, rows in (
            (FinalLabel, FINAL_LABEL_COLUMNS, self.finals),
            (Annotation, ANNOTATION_COLUMNS, self.annotations),
            (SampleCategory, ("sample", "code"), sorted(self.known)),
        ):
            if rows:
                insert_rows(model, columns, rows)
        self.finals, self.annotations, self.known = [], [], set()

    def _take_ids(self, count: int) -> list[int]:
        """``count`` reserved sample ids; reserves the next block (a statement) when too few are left:
        a checkpoint's worth after a full chunk, just ``count`` after the file's last, short one (so a
        small file leaves no gap in the ids). Ids left over from a block are dropped, not kept: on
        SQLite a block starts after the largest id."""
        if len(self.ids) < count:
            self.flush()
            full = count >= settings.AEGIS_IMPORT_BATCH_SIZE
            self.ids = reserve_ids(Sample, count * CHUNKS_PER_CHECKPOINT if full else count)
        taken, self.ids = self.ids[:count], self.ids[count:]
        return taken

    def uid_for(self, record: SampleRecord) -> str:
        return record.uid or f"{self.batch.source_name}-{record.source_id}"

    def write(self, chunk: list[tuple[Location, SampleRecord]]) -> None:
        if not chunk:
            return
        keyed = [(location, record, self.uid_for(record), record.content_hash) for location, record in chunk]
        if self.earlier is None:
            self.flush()
            stored_by_hash = self._stored("content_hash", {k[3] for k in keyed})
            stored_uids = self._stored("uid", {k[2] for k in keyed})
        else:
            earlier_uids, earlier_hashes = self.earlier
            stored_by_hash = {k[3]: self.batch.pk for k in keyed if k[3] in earlier_hashes}
            stored_uids = {k[2]: self.batch.pk for k in keyed if k[2] in earlier_uids}
        new_by_hash: dict[str, Location] = {}
        new_by_uid: dict[str, Location] = {}
        to_create: list[tuple[str, str, SampleRecord, str, str | None]] = []
        for location, record, uid, content_hash in keyed:
            if content_hash in stored_by_hash or content_hash in new_by_hash:
                if content_hash in new_by_hash or stored_by_hash[content_hash] == self.batch.pk:
                    self.duplicates += 1
                else:
                    self.existing += 1
                continue
            if uid in new_by_uid:
                raise ImportDataError(
                    f"duplicate id {uid!r}: {new_by_uid[uid]} has the same id with different content",
                    location,
                    "id",
                )
            if uid in stored_uids:
                where = (
                    "earlier in this file"
                    if stored_uids[uid] == self.batch.pk
                    else "by a sample already in the project"
                )
                raise ImportDataError(f"duplicate id {uid!r}: used {where} with different content", location, "id")
            for position, annotation in enumerate(record.annotations, start=1):
                problem = annotator_name_problem(annotation.annotator)
                if problem:
                    raise ImportDataError(problem, location, f"annotations[{position}].annotator")
            new_by_hash[content_hash] = location
            new_by_uid[uid] = location
            try:
                prompt, response = prompt_and_response(record.turns)
            except RowError as error:
                raise ImportDataError(error.message, location, error.field) from None
            to_create.append((uid, content_hash, record, prompt, response))
        if to_create:
            self._insert(to_create)
            self._remember(to_create)

    def _remember(self, created: list[tuple[str, str, SampleRecord, str, str | None]]) -> None:
        if self.earlier is None:
            return
        earlier_uids, earlier_hashes = self.earlier
        earlier_uids.update(uid for uid, *_ in created)
        earlier_hashes.update(content_hash for _, content_hash, *_ in created)
        if len(earlier_uids) > EARLIER_IN_MEMORY:
            self.earlier = None  # bounded memory: the database answers from here on

    def _stored(self, field: str, values: set[str]) -> dict[str, int]:
        """{value: import batch} of the project's samples whose ``field`` (uid or content_hash) is in ``values``."""
        if connection.vendor != "postgresql":
            return dict(
                Sample.objects.filter(project=self.project, **{f"{field}__in": values}).values_list(
                    field, "import_batch_id"
                )
            )
        # One array parameter: the ORM's IN list makes the driver scan a query of thousands of placeholders.
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT "{field}", import_batch_id FROM annotation_sample '
                f'WHERE project_id = %s AND "{field}" = ANY(%s)',
                [self.project.pk, list(values)],
            )
            return dict(cursor.fetchall())

    def _insert(self, new: list[tuple[str, str, SampleRecord, str, str | None]]) -> None:
        """Streams the samples as plain rows (see annotation.bulk); their final labels, annotations and
        categories wait for the next ``flush()``."""
        now = db_datetime(timezone.now())
        ids = self._take_ids(len(new))
        self._resolve_annotators({a.annotator for _, _, record, _, _ in new for a in record.annotations})
        project, batch, source = self.project.pk, self.batch.pk, self.batch.source_name
        samples, finals, annotations, known = [], self.finals, self.annotations, self.known
        for sample_id, (uid, content_hash, record, prompt, response) in zip(ids, new):
            samples.append(
                (
                    sample_id,
                    project,
                    uid,
                    _json(record.turns),
                    prompt,
                    response,
                    source,
                    record.source_id,
                    content_hash,
                    record.reconstruction_id,
                    _json(record.metadata),
                    batch,
                    now,
                )
            )
            final = record.final_label
            if final is not None:
                known.update((sample_id, code) for code in final.categories)
                finals.append(
                    (
                        sample_id,
                        final.prompt_label,
                        final.prompt_label_source,
                        final.response_label,
                        final.response_label_source,
                        final.response_refusal,
                        _json(final.categories),
                        batch,
                        now,
                    )
                )
            for annotation in record.annotations:
                known.update((sample_id, code) for code in annotation.categories)
                annotations.append(
                    (
                        sample_id,
                        self.annotator_ids[annotation.annotator],
                        annotation.prompt_label,
                        annotation.response_label,
                        annotation.response_refusal,
                        _json(annotation.categories),
                        "",
                        "",
                        batch,
                        now,
                        now,
                    )
                )
        self.samples.write(samples)
        self.created += len(new)

    def _resolve_annotators(self, names: set[str]) -> None:
        """The account of each annotator name not met before (statements: the stream is flushed first):
        the inactive account ``imported:<name>``; with ``map_annotators``, an existing user of that name."""
        new = sorted(names - self.annotator_ids.keys())
        if not new:
            return
        self.flush()
        user_model = get_user_model()
        for name in new:
            user = user_model.objects.filter(username=name).first() if self.map_annotators else None
            if user is None:
                user = user_model.objects.filter(username=imported_username(name)).first()
            if user is None:
                user = user_model(username=imported_username(name), is_active=False)
                user.set_unusable_password()
                user.save()
            self.annotator_ids[name] = user.pk
