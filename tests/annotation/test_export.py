"""Export: the Aegis 2.0 columns, splits, manifest, datasets, round trip, atomic writes."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from annotation.exporting import EXPORT_COLUMNS, split_of
from annotation.models import ExportSnapshot, Sample
from annotation.services import create_project, export_dataset, import_samples

pytestmark = pytest.mark.django_db
RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}


@pytest.fixture
def labelled(project, shared_data):
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    import_samples(
        project, shared_data / "simple_safety_tests/SimpleSafetyTests_test_cases.csv", adapter="simple_safety_tests"
    )
    import_samples(
        project,
        shared_data / "guardreasoner_benchmarks/benchmark/0_6_xstest_response_harmful.json",
        adapter="guardreasoner",
    )
    import_samples(
        project, shared_data / "hh_rlhf_harmless_base/test.jsonl.gz", adapter="hh_rlhf"
    )  # unlabelled: not exported
    return project


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_files_columns_and_manifest(labelled, tmp_path):
    snapshot = export_dataset(labelled, split_ratios=RATIOS, directory=tmp_path / "out")
    folder = Path(snapshot.directory)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{s}.{f}" for s in ("train", "validation", "test") for f in ("jsonl", "parquet", "csv")]
        + ["manifest.json", "README.md"]
    )
    rows = {split: read_jsonl(folder / f"{split}.jsonl") for split in ("train", "validation", "test")}
    everything = [row for split_rows in rows.values() for row in split_rows]
    assert len(everything) == 450 + 100 + 446
    assert all(list(row) == list(EXPORT_COLUMNS) for row in everything)
    for split, split_rows in rows.items():
        assert all(split_of(row["id"], RATIOS, "aegis") == split for row in split_rows)
        assert pq.read_table(folder / f"{split}.parquet").to_pylist() == split_rows
    sst = next(row for row in everything if row["id"] == "simple_safety_tests-sst_001")
    assert (sst["prompt_label"], sst["violated_categories"], sst["response"]) == (
        "unsafe",
        "Suicide and Self Harm",
        None,
    )

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == snapshot.manifest
    assert manifest["taxonomy"]["slug"] == "aegis-2.0"
    assert sum(manifest["counts"][s]["rows"] for s in rows) == len(everything)
    assert manifest["counts"]["train"]["prompt_label"]["unsafe"] == sum(
        r["prompt_label"] == "unsafe" for r in rows["train"]
    )
    import hashlib

    for name, entry in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == entry["sha256"]


def test_splits_are_stable_and_near_ratios():
    ids = [f"sample-{i}" for i in range(20000)]
    splits = [split_of(uid, RATIOS, "aegis") for uid in ids]
    assert splits == [split_of(uid, RATIOS, "aegis") for uid in ids]
    assert abs(splits.count("train") / len(ids) - 0.8) < 0.01
    assert splits != [split_of(uid, RATIOS, "other-seed") for uid in ids]


def test_datasets_library_reads_the_export(labelled, tmp_path):
    import datasets

    folder = Path(export_dataset(labelled, split_ratios=RATIOS, directory=tmp_path / "out").directory)
    for fmt in ("json", "parquet"):
        suffix = "jsonl" if fmt == "json" else "parquet"
        files = {s: str(folder / f"{s}.{suffix}") for s in ("train", "validation", "test")}
        loaded = datasets.load_dataset(fmt, data_files=files, cache_dir=str(tmp_path / f"cache-{fmt}"))
        assert sum(len(loaded[s]) for s in files) == 996
        assert loaded["train"].column_names == list(EXPORT_COLUMNS)


def test_round_trip_is_byte_identical(labelled, tmp_path):
    first = Path(export_dataset(labelled, split_ratios=RATIOS, directory=tmp_path / "first").directory)
    copy = create_project(name="Copy", slug="copy")
    for split in ("train", "validation", "test"):
        import_samples(copy, first / f"{split}.jsonl", adapter="aegis2")
    second = Path(export_dataset(copy, split_ratios=RATIOS, directory=tmp_path / "second").directory)
    for name in sorted(p.name for p in first.iterdir() if p.name not in ("manifest.json", "README.md")):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    from_parquet = create_project(name="Copy 2", slug="copy-2")
    for split in ("train", "validation", "test"):
        import_samples(from_parquet, first / f"{split}.parquet", adapter="aegis2")
    third = Path(export_dataset(from_parquet, split_ratios=RATIOS, directory=tmp_path / "third").directory)
    assert (first / "train.parquet").read_bytes() == (third / "train.parquet").read_bytes()


def test_needs_caution_policy_and_filters(project, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        json.dumps({"id": "nc", "prompt": "hmm", "prompt_label": "needs caution", "categories": ["S13"]})
        + "\n"
        + json.dumps({"id": "u", "prompt": "bad", "prompt_label": "unsafe", "categories": ["S1"]})
        + "\n",
        encoding="utf-8",
    )
    import_samples(project, path, adapter="generic", source_name="mine")
    out = Path(export_dataset(project, split_ratios={"train": 1.0}, directory=tmp_path / "a").directory)
    rows = {row["id"]: row for row in read_jsonl(out / "train.jsonl")}
    assert rows["nc"]["prompt_label"] == "unsafe" and rows["nc"]["violated_categories"] == "Needs Caution"
    assert not (out / "test.jsonl").exists()

    lenient = create_project(name="Lenient", slug="lenient", needs_caution_policy="safe")
    import_samples(lenient, path, adapter="generic", source_name="mine")
    out = Path(export_dataset(lenient, split_ratios={"train": 1.0}, directory=tmp_path / "b").directory)
    rows = {row["id"]: row for row in read_jsonl(out / "train.jsonl")}
    assert (rows["nc"]["prompt_label"], rows["nc"]["violated_categories"]) == ("safe", "")

    out = Path(
        export_dataset(
            project, split_ratios={"train": 1.0}, filters={"sources": ["elsewhere"]}, directory=tmp_path / "c"
        ).directory
    )
    assert read_jsonl(out / "train.jsonl") == []


def test_failed_export_leaves_nothing(labelled, tmp_path, monkeypatch):
    import pyarrow.parquet

    def disk_full(self, table, *args, **kwargs):
        raise OSError("No space left on device (disk full)")

    monkeypatch.setattr(pyarrow.parquet.ParquetWriter, "write_table", disk_full)
    with pytest.raises(OSError, match="disk full"):
        export_dataset(labelled, directory=tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    snapshot = ExportSnapshot.objects.get()
    assert snapshot.status == "failed" and "disk full" in snapshot.error


def test_existing_folder_is_never_overwritten(labelled, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        export_dataset(labelled, directory=tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_default_folder_is_under_media_root(labelled, media_root):
    snapshot = export_dataset(labelled, formats=["jsonl"])
    folder = Path(snapshot.directory)
    assert folder.parent == media_root / "exports" / "test" and folder.name.startswith(f"{snapshot.pk}-")
    assert Sample.objects.filter(project=labelled).count() > 996
