"""The release profile (the Aegis 2.0 release layout), the raw profile and the dataset card."""

import json
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from annotation.dataset_card import card_features
from annotation.models import AgreementReport, ExportSnapshot, Sample
from annotation.release import RELEASE_COLUMNS, RELEASE_FILES
from annotation.services import create_project, export_dataset, import_samples
from annotation.services.reports import compute_agreement_report, labels_fingerprint

pytestmark = pytest.mark.django_db
DATA_FILES = [f"{name}.json" for name in RELEASE_FILES]


def release_row(
    uid,
    prompt,
    response=None,
    *,
    prompt_label="safe",
    response_label=None,
    categories="",
    response_source=None,
    reconstruction=None,
    prompt_source="human",
):
    return {
        "id": uid,
        "reconstruction_id_if_redacted": reconstruction,
        "prompt": prompt,
        "response": response,
        "prompt_label": prompt_label,
        "response_label": response_label,
        "violated_categories": categories,
        "prompt_label_source": prompt_source,
        "response_label_source": response_source if response_label else None,
    }


def release_files() -> dict[str, list[dict]]:
    """A small release: every file holds a REDACTED row and a response, so no column is all null;
    the refusal files hold only refusals (as the release's do)."""
    files: dict[str, list[dict]] = {}
    for name in RELEASE_FILES:
        if name.startswith("refusals_"):
            refusal = {"response_label": "safe", "response_source": "refusal_data_augmentation"}
            files[name] = [
                release_row(
                    f"{name}-unsafe",
                    f"How do I hurt someone? ({name})",
                    "I can't help with that.",
                    prompt_label="unsafe",
                    categories="Violence, Threat",
                    **refusal,
                ),
                release_row(
                    f"{name}-redacted",
                    "REDACTED",
                    "Please talk to someone you trust.",
                    prompt_label="unsafe",
                    categories="Suicide and Self Harm",
                    reconstruction=len(name),
                    **refusal,
                ),
                release_row(
                    f"{name}-crime",
                    f"Plan a robbery ({name})",
                    "Here is why I won't.",
                    prompt_label="unsafe",
                    categories="Criminal Planning/Confessions",
                    **refusal,
                ),
            ]
            continue
        response = "Sure, <b>here</b> is how."
        files[name] = [
            release_row(f"{name}-safe", f"How do I bake bread? ({name})"),
            release_row(
                f"{name}-unsafe",
                f"How do I hurt someone? ({name})",
                response,
                prompt_label="unsafe",
                response_label="unsafe",
                categories="Violence, Threat",
                response_source="llm_jury",
            ),
            release_row(
                f"{name}-redacted",
                "REDACTED",
                response,
                prompt_label="unsafe",
                response_label="unsafe",
                categories="Suicide and Self Harm",
                response_source="human",
                reconstruction=len(name),
            ),
            release_row(f"{name}-empty", f"Say nothing ({name})", "", response_label="safe", response_source="human"),
        ]
    return files


def write_release(folder: Path, files: dict[str, list[dict]]) -> None:
    folder.mkdir()
    for name, rows in files.items():
        (folder / f"{name}.json").write_text(json.dumps(rows, indent=4), encoding="utf-8")


def card_header(folder: Path) -> dict:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text[4 : text.index("\n---\n")])  # the header ends at a line that is just ---


def declared(header: dict) -> dict[str, str]:
    return {feature["name"]: feature["dtype"] for feature in header["dataset_info"]["features"]}


def test_release_round_trip_keeps_rows_splits_values_and_files(project, tmp_path):
    original = release_files()
    write_release(tmp_path / "release", original)
    for name in RELEASE_FILES:  # the release's own split is taken from each file's name
        batch = import_samples(project, tmp_path / "release" / f"{name}.json", adapter="aegis2")
        assert batch.status == "succeeded", batch.error
    assert Sample.objects.get(uid="test-redacted").metadata == {"release_split": "test"}

    # A seed and ratios that would hash rows elsewhere: the split recorded at import wins.
    snapshot = export_dataset(project, profile="release", split_seed="other", directory=tmp_path / "out")
    out = Path(snapshot.directory)
    assert sorted(p.name for p in out.iterdir()) == sorted([*DATA_FILES, "README.md", "manifest.json"])
    for name, rows in original.items():
        exported = json.loads((out / f"{name}.json").read_bytes())
        assert exported == rows, name
        assert all(list(row) == list(RELEASE_COLUMNS) for row in exported)
    redacted = json.loads((out / "test.json").read_bytes())[2]
    assert redacted["reconstruction_id_if_redacted"] == 4 and isinstance(redacted["reconstruction_id_if_redacted"], int)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["profile"] == "release" and manifest["columns"] == list(RELEASE_COLUMNS)
    assert manifest["label_source_mapping"]["adjudicated"] == "human"
    assert all(entry["rows"] == 0 for entry in manifest["left_out"].values())
    assert {name: entry["rows"] for name, entry in manifest["counts"].items()} == {
        name: len(rows) for name, rows in original.items()
    }

    # Re-exporting gives the same bytes (splits stable across exports).
    again = Path(export_dataset(project, profile="release", directory=tmp_path / "again").directory)
    for name in DATA_FILES:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name

    # And importing our own export into a new project gives the same bytes again.
    copy = create_project(name="Copy", slug="copy")
    for name in DATA_FILES:
        import_samples(copy, out / name, adapter="aegis2")
    third = Path(export_dataset(copy, profile="release", directory=tmp_path / "third").directory)
    for name in DATA_FILES:
        assert (third / name).read_bytes() == (out / name).read_bytes(), name


def test_release_files_load_in_datasets_with_the_cards_features(project, tmp_path):
    import datasets

    write_release(tmp_path / "release", release_files())
    for name in RELEASE_FILES:
        import_samples(project, tmp_path / "release" / f"{name}.json", adapter="aegis2")
    out = Path(export_dataset(project, profile="release", directory=tmp_path / "out").directory)
    header = card_header(out)
    assert declared(header) == {f["name"]: f["dtype"] for f in card_features("release")}
    assert declared(header)["reconstruction_id_if_redacted"] == "int64"
    data_files = {
        entry["split"]: [str(out / path) for path in entry["path"]] for entry in header["configs"][0]["data_files"]
    }
    assert data_files["train"] == [str(out / "train.json"), str(out / "refusals_train.json")]
    assert data_files["test"] == [str(out / "test.json")]
    loaded = datasets.load_dataset("json", data_files=data_files, cache_dir=str(tmp_path / "cache"))
    from_card = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache-card"))
    assert {split: d.features for split, d in from_card.items()} == {split: d.features for split, d in loaded.items()}
    for split, dataset in loaded.items():
        assert list(dataset.features) == list(RELEASE_COLUMNS), split
        assert {name: feature.dtype for name, feature in dataset.features.items()} == declared(header), split
    sizes = {entry["name"]: entry["num_examples"] for entry in header["dataset_info"]["splits"]}
    assert (
        sizes
        == {split: len(dataset) for split, dataset in loaded.items()}
        == {
            "train": 7,
            "validation": 7,
            "test": 4,
        }
    )


def test_the_card_types_columns_that_are_all_null(project, tmp_path, shared_data):
    """Prompt-only data: ``response`` is null in every row; the card still loads it as a string."""
    import datasets

    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    out = Path(export_dataset(project, formats=["jsonl"], directory=tmp_path / "out").directory)
    untyped = datasets.load_dataset("json", data_files=str(out / "train.jsonl"), cache_dir=str(tmp_path / "c1"))
    assert untyped["train"].features["response"].dtype == "null"  # what the data alone gives
    typed = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "c2"))
    for dataset in typed.values():
        assert {name: f.dtype for name, f in dataset.features.items()} == declared(card_header(out))
        assert set(declared(card_header(out)).values()) == {"string"}
    assert sum(len(d) for d in typed.values()) == 450


def test_release_leaves_out_what_the_release_never_holds_and_maps_sources(project, tmp_path):
    rows = [
        {"id": "response-only", "prompt": "p1", "response": "r1", "response_label": "unsafe", "categories": ["S1"]},
        {"id": "unlabelled-response", "prompt": "p2", "response": "r2", "prompt_label": "safe"},
        {"id": "odd-reconstruction", "prompt": "REDACTED", "prompt_label": "safe", "reconstruction_id": "abc"},
        {
            "id": "adjudicated",
            "prompt": "p4",
            "prompt_label": "unsafe",
            "prompt_label_source": "adjudicated",
            "categories": ["S1"],
        },
        {"id": "imported", "prompt": "p5", "prompt_label": "safe"},
    ]
    rows += [
        {
            "id": f"refusal-{i}",
            "prompt": f"bad {i}",
            "response": "No.",
            "prompt_label": "unsafe",
            "response_label": "safe",
            "response_label_source": "refusal_data_augmentation",
            "categories": ["S1"],
        }
        for i in range(200)
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    import_samples(project, path, adapter="generic")

    ratios = {"train": 0.5, "validation": 0.25, "test": 0.25}
    out = Path(export_dataset(project, profile="release", split_ratios=ratios, directory=tmp_path / "out").directory)
    files = {name: json.loads((out / f"{name}.json").read_bytes()) for name in RELEASE_FILES}
    written = {row["id"]: row for rows in files.values() for row in rows}
    assert set(written) == {"adjudicated", "imported", *(f"refusal-{i}" for i in range(200))}
    assert written["adjudicated"]["prompt_label_source"] == "human"
    assert written["imported"]["prompt_label_source"] == "human"
    assert not any(row["response_label_source"] == "refusal_data_augmentation" for row in files["test"])
    assert len(files["refusals_train"]) > len(files["refusals_validation"]) > 0
    assert len(files["refusals_train"]) + len(files["refusals_validation"]) == 200

    manifest = json.loads((out / "manifest.json").read_text())
    assert {reason: entry["rows"] for reason, entry in manifest["left_out"].items()} == {
        "no_prompt_label": 1,
        "response_without_label": 1,
        "reconstruction_id_not_a_number": 1,
    }
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "- no prompt label (the release labels every prompt): 1" in card
    assert "| adjudicated | human |" in card


def test_release_profile_refuses_other_formats(project):
    with pytest.raises(ValueError, match="JSON arrays only"):
        export_dataset(project, profile="release", formats=["csv"])
    with pytest.raises(ValueError, match="unknown export profile 'nope'"):
        export_dataset(project, profile="nope")
    assert not ExportSnapshot.objects.exists()


def test_raw_profile_exports_unlabelled_samples_too(project, shared_data, tmp_path):
    import_samples(project, shared_data / "xstest/xstest_prompts.csv", adapter="xstest_prompts")
    import_samples(project, shared_data / "hh_rlhf_harmless_base/test.jsonl.gz", adapter="hh_rlhf")
    total = Sample.objects.filter(project=project).count()
    out = export_dataset(
        project, profile="raw", formats=["jsonl"], split_ratios={"train": 1.0}, directory=tmp_path / "o"
    ).directory
    rows = [json.loads(line) for line in (Path(out) / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == total > 450
    unlabelled = [row for row in rows if row["prompt_label"] is None]
    assert len(unlabelled) == total - 450
    assert all(row["prompt_label_source"] is None and row["violated_categories"] == "" for row in unlabelled)
    assert json.loads((Path(out) / "manifest.json").read_text())["profile"] == "raw"


def test_card_renders_agreement_jury_and_label_sources_escaped(tmp_path):
    from jury.models import Juror

    project = create_project(name="Team <script>alert(1)</script>\n---\nlicense: mit", slug="team")
    path = tmp_path / "labelled.jsonl"
    votes = [
        ("unsafe", "unsafe", "unsafe"),
        ("safe", "safe", "unsafe"),
        ("safe", "safe", "safe"),
        ("unsafe", "safe", "unsafe"),
        ("safe", "safe", "safe"),
        ("unsafe", "unsafe", "safe"),
    ]
    lines = []
    for i, labels in enumerate(votes):
        final = max(set(labels), key=labels.count)
        lines.append(
            json.dumps(
                {
                    "id": f"s{i}",
                    "prompt": f"prompt {i}",
                    "prompt_label": final,
                    "prompt_label_source": "human",
                    "categories": ["S1"] if final == "unsafe" else [],
                    "annotations": [
                        {"annotator": name, "prompt_label": label, "categories": ["S1"] if label == "unsafe" else []}
                        for name, label in zip(("ann_a", "ann_b", "ann_c"), labels)
                    ],
                }
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_samples(project, path, adapter="generic")
    Juror.objects.create(project=project, name="judge | one", model="mistral-nemo-12b")
    report = compute_agreement_report(
        AgreementReport.objects.create(project=project, labels_fingerprint=labels_fingerprint(project))
    )
    alpha = report.report["fields"]["prompt_label"]["alpha"]
    fleiss = report.report["fields"]["prompt_label"]["fleiss_kappa"]["value"]

    out = Path(export_dataset(project, split_ratios={"train": 1.0}, directory=tmp_path / "out").directory)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert (
        f"| prompt_label | {alpha['value']:.3f} | {alpha['ci95'][0]:.3f} – {alpha['ci95'][1]:.3f} "
        f"| {fleiss:.3f} | 6 |" in card
    )
    assert "(matches the labels as exported)" in card
    assert "| train | prompt_label_source | human | 6 |" in card
    assert "0 labelled in the app and 3 came with imported data (18 annotations" in card and "k = 3" in card
    assert "| train | response_label_source | null (no label) | 6 |" in card
    assert "| judge \\| one | mistral-nemo-12b | responses |" in card
    assert "| S1 | Violence | core |" in card
    body = card[card.index("\n---\n") + 5 :]
    assert "<script>" not in body and "\n# Team &lt;script&gt;alert(1)&lt;/script&gt; --- license: mit\n" in body
    header = card_header(out)
    assert header["pretty_name"] == "Team <script>alert(1)</script>\n---\nlicense: mit"  # quoted, read back as is
    assert "license" in header and header["license"] is None
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]["README.md"]["kind"] == "dataset card"


def test_command_and_api_select_the_profile(project, tmp_path, capsys, admin_client):
    write_release(tmp_path / "release", release_files())
    for name in RELEASE_FILES:
        import_samples(project, tmp_path / "release" / f"{name}.json", adapter="aegis2")
    call_command("export_dataset", project="test", profile="release", out=str(tmp_path / "cli"))
    output = capsys.readouterr().out
    assert "left out (not in the release layout)" in output
    assert (tmp_path / "cli" / "refusals_validation.json").is_file()

    response = admin_client.post(
        f"/api/projects/{project.pk}/exports/", {"profile": "release"}, content_type="application/json"
    )
    assert response.status_code == 202, response.content
    assert response.json()["profile"] == "release" and response.json()["formats"] == ["json"]
    bad = admin_client.post(
        f"/api/projects/{project.pk}/exports/",
        {"profile": "release", "formats": ["csv"]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "JSON arrays only" in bad.json()["detail"]


def test_training_blends_and_benchmarks_read_a_release_export(project, tmp_path, django_user_model):
    from evaluation.benchmarks import get_benchmark
    from training.services import build_blend, read_blend

    write_release(tmp_path / "release", release_files())
    for name in RELEASE_FILES:
        import_samples(project, tmp_path / "release" / f"{name}.json", adapter="aegis2")
    snapshot = export_dataset(project, profile="release", directory=tmp_path / "out")
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    blend = build_blend(snapshot, by=boss, options={"shuffle_probability": 0, "drop_probability": 0})
    train = {example["id"] for example in read_blend(blend, "train")}
    expected = {row["id"] for name in ("train", "refusals_train") for row in release_files()[name]}
    assert train == expected - {"train-empty"}  # the blend skips an empty response (its own rule)
    assert blend.manifest["skipped"] == {"response without a label": 2}  # train-empty, validation-empty
    prompts = get_benchmark("export_prompt").load(Path(snapshot.directory))
    assert sorted(item.uid for item in prompts) == ["test-empty", "test-safe", "test-unsafe"]  # REDACTED left out


@pytest.mark.django_db(transaction=True)
def test_admin_actions_start_release_and_raw_exports(client, django_user_model, project, celery_worker, tmp_path):
    from tests.conftest import wait_until_finished

    write_release(tmp_path / "release", release_files())
    for name in RELEASE_FILES:
        import_samples(project, tmp_path / "release" / f"{name}.json", adapter="aegis2")
    client.force_login(django_user_model.objects.create_superuser("root-admin", password="pw-root-123"))
    for action, profile in (("export_release", "release"), ("export_raw", "raw")):
        response = client.post("/admin/annotation/project/", {"action": action, "_selected_action": [project.pk]})
        assert response.status_code == 302
        snapshot = wait_until_finished(ExportSnapshot, ExportSnapshot.objects.latest("pk").pk)
        assert (snapshot.status, snapshot.profile) == ("succeeded", profile), snapshot.error
        assert (Path(snapshot.directory) / "README.md").is_file()
    listing = client.get("/admin/annotation/exportsnapshot/?profile=release")
    assert listing.status_code == 200 and b"release" in listing.content
