"""The import_samples and export_dataset commands."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_import_then_export_from_the_command_line(project, shared_data, tmp_path, capsys):
    call_command(
        "import_samples", str(shared_data / "xstest/xstest_prompts.csv"), project="test", adapter="xstest_prompts"
    )
    assert "450 samples added" in capsys.readouterr().out
    call_command("export_dataset", project="test", out=str(tmp_path / "out"), formats=["jsonl"], split="1,0,0")
    out = capsys.readouterr().out
    assert f"exported to {tmp_path / 'out'}" in out
    assert sorted(p.name for p in Path(tmp_path / "out").iterdir()) == ["README.md", "manifest.json", "train.jsonl"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["train"]["rows"] == 450


def test_command_errors_are_clear(project, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "prompt": "x", "prompt_label": "perhaps"}\n', encoding="utf-8")
    with pytest.raises(CommandError, match=r"bad.jsonl, line 1, field 'prompt_label'"):
        call_command("import_samples", str(bad), project="test", adapter="aegis2")
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call_command("import_samples", str(bad), project="nope", adapter="aegis2")
    with pytest.raises(CommandError, match="add up to 1"):
        call_command("export_dataset", project="test", out=str(tmp_path / "o"), split="0.5,0.1,0.1")
    assert not (tmp_path / "o").exists()
