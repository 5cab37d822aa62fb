"""Writes of the annotation app (atomic, validated); views, commands and tasks call these."""

from .adjudication import adjudicate, finalize_sample, review_queue
from .exports import cancel_export, export_dataset, run_export, start_export
from .imports import cancel_import_batch, import_samples, run_import_batch, start_import_batch, store_upload
from .projects import create_project
from .work import (
    NoWork,
    Pull,
    add_member,
    annotation_snapshot,
    create_assignment_batch,
    flag_assignment,
    next_assignment,
    pull_next_item,
    skip_assignment,
    submit_and_pull_next,
    submit_annotation,
)

__all__ = [
    "cancel_export",
    "cancel_import_batch",
    "NoWork",
    "Pull",
    "adjudicate",
    "finalize_sample",
    "review_queue",
    "add_member",
    "annotation_snapshot",
    "create_assignment_batch",
    "flag_assignment",
    "next_assignment",
    "pull_next_item",
    "skip_assignment",
    "submit_and_pull_next",
    "submit_annotation",
    "create_project",
    "export_dataset",
    "import_samples",
    "run_export",
    "run_import_batch",
    "start_export",
    "start_import_batch",
    "store_upload",
]
