"""Fixtures of the evaluation tests: the stand-in guard server (``tests.guards.conftest``), and a
MiniLM guard trained by the training module on real rows."""

import gzip
import json

import pytest

from tests.guards.conftest import guard_server  # noqa: F401  (the stand-in guard server)


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_user("boss", password="pw-boss-123", is_staff=True)


QUICK_MINILM = {"max_steps": 3, "max_length": 32, "batch_size": 16}


def _first_lines(source, target, count: int) -> None:
    opener = gzip.open if str(source).endswith(".gz") else open
    with opener(source, "rt", encoding="utf-8") as stream:
        lines = [line for _, line in zip(range(count), stream)]
    target.write_text("".join(lines), encoding="utf-8")


@pytest.fixture
def minilm_guard(project, boss, shared_data, tmp_path):
    """A MiniLM guard trained by the training module (import, export, blend, a few steps) on real
    rows — 150 OpenAI moderation prompts and 120 XSTest prompts — plus the five Aegis 2.0 rows of
    the training tests, whose responses give the response classifier both classes."""
    from annotation.services import export_dataset, import_samples
    from tests.training.conftest import ROWS
    from training.models import GuardModel
    from training.services import build_blend, run_training, start_training_run

    moderation = tmp_path / "moderation.jsonl"
    _first_lines(shared_data / "openai_moderation" / "samples-1680.jsonl.gz", moderation, 150)
    xstest = tmp_path / "xstest_prompts.csv"
    _first_lines(shared_data / "xstest" / "xstest_prompts.csv", xstest, 121)
    aegis = tmp_path / "aegis.jsonl"
    aegis.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    import_samples(project, moderation, adapter="openai_moderation")
    import_samples(project, xstest, adapter="xstest_prompts")
    import_samples(project, aegis, adapter="aegis2")
    export = export_dataset(project, formats=["jsonl"], split_ratios={"train": 0.8, "validation": 0.1, "test": 0.1})
    blend = build_blend(export, by=boss)
    run = run_training(start_training_run(blend, by=boss, kind="minilm", config=QUICK_MINILM))
    assert run.status == "succeeded", run.error
    guard = GuardModel.objects.get(run=run)
    guard.export = export
    return guard
