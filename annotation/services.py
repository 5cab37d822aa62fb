"""Writes of the annotation app: projects, imports and exports (atomic, validated)."""
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from taxonomy.models import Taxonomy
from taxonomy.selectors import CategoryIndex, default_taxonomy
from taxonomy.services import freeze_taxonomy

from .bulk import db_datetime, insert_rows, reserve_ids
from .exporting import (
    DEFAULT_SPLIT_RATIOS,
    EXPORT_COLUMNS,
    EXPORT_FORMATS,
    SPLITS,
    SplitFiles,
    check_split_ratios,
    file_digest,
    split_of,
)
from .importing.adapters import AdapterContext, get_adapter
from .importing.errors import ImportDataError, Location, RowError
from .importing.readers import columns_of, read_records
from .importing.records import SampleRecord, prompt_and_response
from .labels import NeedsCautionPolicy
from .models import Annotation, ExportSnapshot, FinalLabel, ImportBatch, JobStatus, Project, Sample
from .selectors import check_export_filters, export_rows


@transaction.atomic
def create_project(
    *,
    name: str,
    slug: str,
    taxonomy: Taxonomy | None = None,
    guidelines: str = "",
    annotations_per_sample: int = 3,
    needs_caution_policy: str = NeedsCautionPolicy.UNSAFE,
    created_by=None,
) -> Project:
    """A new project; its taxonomy version freezes, since labels now refer to it."""
    taxonomy = taxonomy or default_taxonomy()
    if annotations_per_sample < 1:
        raise ValueError("annotations_per_sample must be at least 1")
    freeze_taxonomy(taxonomy)
    return Project.objects.create(
        name=name,
        slug=slug,
        taxonomy=taxonomy,
        guidelines=guidelines,
        annotations_per_sample=annotations_per_sample,
        needs_caution_policy=NeedsCautionPolicy(needs_caution_policy),
        created_by=created_by,
    )


def store_upload(uploaded) -> Path:
    """Keeps an uploaded file under MEDIA_ROOT/uploads for the worker that imports it."""
    folder = Path(settings.MEDIA_ROOT) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / Path(uploaded.name).name
    with path.open("wb") as stream:
        for chunk in uploaded.chunks():
            stream.write(chunk)
    return path


def start_import_batch(
    project: Project, *, adapter: str, filename: str, stored_path: str = "", source_name: str | None = None, created_by=None
) -> ImportBatch:
    """Records an import to run (now or in a worker); checks the adapter name first."""
    adapter_obj = get_adapter(adapter)
    return ImportBatch.objects.create(
        project=project,
        adapter=adapter,
        source_name=source_name or adapter_obj.source_name_for(filename),
        filename=filename,
        stored_path=stored_path,
        created_by=created_by,
    )


def run_import_batch(batch: ImportBatch) -> ImportBatch:
    """Imports the batch's stored file; on failure the batch records the error, nothing else."""
    return _run_import(batch, Path(batch.stored_path))


def import_samples(
    project: Project,
    path: str | Path,
    *,
    adapter: str,
    source_name: str | None = None,
    display_name: str | None = None,
    created_by=None,
) -> ImportBatch:
    """Imports one file into a project, all or nothing; raises ImportDataError on bad input.

    Rows whose content is already in the project are skipped, so importing twice adds nothing.
    """
    path = Path(path)
    batch = start_import_batch(
        project,
        adapter=adapter,
        filename=display_name or path.name,
        source_name=source_name,
        created_by=created_by,
    )
    return _run_import(batch, path)


def _run_import(batch: ImportBatch, path: Path) -> ImportBatch:
    ImportBatch.objects.filter(pk=batch.pk).update(status=JobStatus.RUNNING)
    try:
        with transaction.atomic():
            counts = _import_rows(batch, path)
    except OSError as error:
        _fail_batch(batch, f"{batch.filename}: {error.strerror or error}")
        raise ImportDataError(error.strerror or str(error), batch.filename) from error
    except ImportDataError as error:
        _fail_batch(batch, str(error))
        raise
    ImportBatch.objects.filter(pk=batch.pk).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now(), **counts)
    batch.refresh_from_db()
    return batch


def _fail_batch(batch: ImportBatch, message: str) -> None:
    ImportBatch.objects.filter(pk=batch.pk).update(status=JobStatus.FAILED, error=message, finished_at=timezone.now())
    batch.refresh_from_db()


def _import_rows(batch: ImportBatch, path: Path) -> dict[str, int]:
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
    ctx = AdapterContext(categories=CategoryIndex.for_taxonomy(project.taxonomy), filename=batch.filename)
    writer = _BatchWriter(batch)
    pending: list[tuple[Location, SampleRecord]] = []
    for index, (location, raw) in enumerate(
        read_records(path, max_field_bytes=settings.AEGIS_IMPORT_MAX_FIELD_BYTES, display_name=batch.filename),
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
    writer.write(pending)
    return {
        "rows_read": writer.rows_read,
        "created_count": writer.created,
        "duplicate_count": writer.duplicates,
        "existing_count": writer.existing,
    }


SAMPLE_COLUMNS = (
    "id", "project", "uid", "turns", "prompt", "response", "source_name", "source_id",
    "content_hash", "reconstruction_id", "metadata", "import_batch", "created_at",
)
FINAL_LABEL_COLUMNS = (
    "sample", "prompt_label", "prompt_label_source", "response_label", "response_label_source",
    "response_refusal", "categories", "import_batch", "updated_at",
)
ANNOTATION_COLUMNS = (
    "sample", "annotator", "prompt_label", "response_label", "response_refusal", "categories",
    "other_risks", "import_batch", "created_at", "updated_at",
)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class _BatchWriter:
    """Writes chunks of records; de-duplicates by content against the chunk and the database."""

    def __init__(self, batch: ImportBatch):
        self.batch = batch
        self.project = batch.project
        self.rows_read = self.created = self.duplicates = self.existing = 0
        self.annotator_ids: dict[str, int] = {}

    def uid_for(self, record: SampleRecord) -> str:
        return record.uid or f"{self.batch.source_name}-{record.source_id}"

    def write(self, chunk: list[tuple[Location, SampleRecord]]) -> None:
        if not chunk:
            return
        keyed = [(location, record, self.uid_for(record), record.content_hash) for location, record in chunk]
        stored_by_hash = dict(
            Sample.objects.filter(project=self.project, content_hash__in={k[3] for k in keyed}).values_list(
                "content_hash", "import_batch_id"
            )
        )
        stored_uids = dict(
            Sample.objects.filter(project=self.project, uid__in={k[2] for k in keyed}).values_list("uid", "import_batch_id")
        )
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
                where = "earlier in this file" if stored_uids[uid] == self.batch.pk else "by a sample already in the project"
                raise ImportDataError(f"duplicate id {uid!r}: used {where} with different content", location, "id")
            new_by_hash[content_hash] = location
            new_by_uid[uid] = location
            try:
                prompt, response = prompt_and_response(record.turns)
            except RowError as error:
                raise ImportDataError(error.message, location, error.field) from None
            to_create.append((uid, content_hash, record, prompt, response))
        if to_create:
            self._insert(to_create)

    def _insert(self, new: list[tuple[str, str, SampleRecord, str, str | None]]) -> None:
        """Writes samples, their final labels and annotations as plain rows (see annotation.bulk)."""
        now = db_datetime(timezone.now())
        ids = reserve_ids(Sample, len(new))
        project, batch, source = self.project.pk, self.batch.pk, self.batch.source_name
        samples, finals, annotations = [], [], []
        for sample_id, (uid, content_hash, record, prompt, response) in zip(ids, new):
            samples.append(
                (
                    sample_id, project, uid, _json(record.turns), prompt, response, source, record.source_id,
                    content_hash, record.reconstruction_id, _json(record.metadata), batch, now,
                )
            )
            final = record.final_label
            if final is not None:
                finals.append(
                    (
                        sample_id, final.prompt_label, final.prompt_label_source, final.response_label,
                        final.response_label_source, final.response_refusal, _json(final.categories), batch, now,
                    )
                )
            for annotation in record.annotations:
                annotations.append(
                    (
                        sample_id, self._annotator_id(annotation.annotator), annotation.prompt_label,
                        annotation.response_label, annotation.response_refusal, _json(annotation.categories),
                        "", batch, now, now,
                    )
                )
        insert_rows(Sample, SAMPLE_COLUMNS, samples)
        insert_rows(FinalLabel, FINAL_LABEL_COLUMNS, finals)
        insert_rows(Annotation, ANNOTATION_COLUMNS, annotations)
        self.created += len(new)

    def _annotator_id(self, name: str) -> int:
        """An existing user of that name, or an inactive account standing for an imported annotator."""
        if name not in self.annotator_ids:
            user_model = get_user_model()
            user = user_model.objects.filter(username=name).first()
            if user is None:
                user = user_model(username=name, is_active=False)
                user.set_unusable_password()
                user.save()
            self.annotator_ids[name] = user.pk
        return self.annotator_ids[name]


def start_export(
    project: Project,
    *,
    formats: list[str] | None = None,
    split_ratios: dict[str, float] | None = None,
    split_seed: str = "aegis",
    filters: dict[str, Any] | None = None,
    directory: str | Path | None = None,
    created_by=None,
) -> ExportSnapshot:
    """Records an export to run (now or in a worker), after checking its options."""
    formats = list(formats or EXPORT_FORMATS)
    SplitFiles.check_formats(formats)
    return ExportSnapshot.objects.create(
        project=project,
        formats=formats,
        split_ratios=check_split_ratios(split_ratios or DEFAULT_SPLIT_RATIOS),
        split_seed=split_seed,
        filters=check_export_filters(filters or {}),
        directory=str(directory) if directory else "",
        created_by=created_by,
    )


def run_export(snapshot: ExportSnapshot) -> ExportSnapshot:
    """Writes the snapshot's files into a temporary folder, then renames it into place."""
    project = snapshot.project
    final = (
        Path(snapshot.directory)
        if snapshot.directory
        else Path(settings.MEDIA_ROOT) / "exports" / project.slug / f"{snapshot.pk}-{uuid.uuid4().hex[:8]}"
    )
    if final.exists():
        _fail_export(snapshot, f"{final} exists already: choose a new folder")
        raise FileExistsError(snapshot.error)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(status=JobStatus.RUNNING)
    try:
        splits = [split for split in SPLITS if snapshot.split_ratios[split] > 0]
        files = SplitFiles(temporary, snapshot.formats, splits)
        try:
            for row in export_rows(project, snapshot.filters):
                files.write(split_of(row["id"], snapshot.split_ratios, snapshot.split_seed), row)
        finally:
            files.close()
        manifest = _manifest(snapshot, files, temporary)
        (temporary / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        os.rename(temporary, final)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        _fail_export(snapshot, f"{type(error).__name__}: {error}")
        raise
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(
        status=JobStatus.SUCCEEDED, directory=str(final), manifest=manifest, finished_at=timezone.now()
    )
    snapshot.refresh_from_db()
    return snapshot


def export_dataset(project: Project, **options: Any) -> ExportSnapshot:
    """Exports a project's labelled samples in the Aegis 2.0 columns (see ``start_export``)."""
    return run_export(start_export(project, **options))


def _fail_export(snapshot: ExportSnapshot, message: str) -> None:
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(status=JobStatus.FAILED, error=message, finished_at=timezone.now())
    snapshot.refresh_from_db()


def _manifest(snapshot: ExportSnapshot, files: SplitFiles, folder: Path) -> dict[str, Any]:
    taxonomy = snapshot.project.taxonomy
    counts = files.summary()
    return {
        "format": "aegis-2.0",
        "columns": list(EXPORT_COLUMNS),
        "snapshot": snapshot.pk,
        "project": snapshot.project.slug,
        "taxonomy": {"slug": taxonomy.slug, "version": taxonomy.version, "name": taxonomy.name},
        "needs_caution_policy": snapshot.project.needs_caution_policy,
        "split": {"seed": snapshot.split_seed, "ratios": snapshot.split_ratios, "by": "sha256(seed, id)"},
        "filters": snapshot.filters,
        "counts": counts,
        "files": {
            path.name: {**file_digest(path), "split": path.stem, "format": path.suffix[1:], "rows": counts[path.stem]["rows"]}
            for path in sorted(folder.iterdir())
        },
        "created_at": timezone.now().isoformat(),
    }
