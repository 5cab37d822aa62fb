"""Evaluation runs: the MiniLM guard trained by the training module scored on every shipped
benchmark by one command; runs through the service (progress, cancel, resume, exports as
benchmarks, per-category results); the GuardReasoner-8B files through the command."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from sklearn.metrics import f1_score

from evaluation.benchmarks import shipped_benchmarks
from evaluation.models import EvaluationRun
from evaluation.services import EvaluationError, run_evaluation, start_evaluation_run
from tests.evaluation.test_predictions import EIGHT_B

pytestmark = pytest.mark.django_db


@pytest.mark.once
def test_minilm_guard_on_every_shipped_benchmark_from_one_command(minilm_guard, capsys):
    pytest.importorskip("torch", reason="the ml extra (scripts/test installs it)")
    call_command("evaluate", guard=[minilm_guard.name], all_shipped=True, limit=60, bootstrap=200)
    captured = capsys.readouterr()
    out = captured.out
    shipped = [benchmark.name for benchmark in shipped_benchmarks()]
    assert len(shipped) == 11
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("| model |"))
    assert header == "| model | " + " | ".join(shipped) + " | average |"
    row = next(line for line in lines if line.startswith(f"| {minilm_guard.name} |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
    assert len(cells) == 12
    refusal = shipped.index("xstest_response_refusal")
    assert cells[refusal] == "—"  # a harmfulness classifier answers no refusal benchmark
    values = [float(cell) for position, cell in enumerate(cells[:-1]) if position != refusal]
    assert len(values) == 10 and all(0 <= value <= 1 for value in values)
    assert float(cells[-1]) == pytest.approx(sum(values) / 10, abs=1e-3)  # the unweighted average
    assert "Threshold: P(unsafe) ≥ 0.5 for " + minilm_guard.name in out
    assert "cannot answer the response refusal task" in out
    assert "a seeded sample of at most 60 items per benchmark (seed 0)" in out
    assert "Category mappings (guard → benchmark categories): none used" in out
    assert f"{minilm_guard.name} × openai_moderation: F1" in captured.err

    run = EvaluationRun.objects.get()
    assert (run.status, run.total, run.done) == ("succeeded", 660, 660)
    assert [cell["benchmark"] for cell in run.cells] == shipped
    folder = Path(run.directory)
    for cell in run.cells:
        if cell["result"] is None:
            continue
        # each cell's F1 again from its predictions file, with scikit-learn
        rows = [json.loads(line) for line in (folder / cell["predictions"]).read_text().splitlines()]
        assert len(rows) == 60 and all(row["score"] is not None for row in rows)
        assert cell["result"]["f1"] == pytest.approx(
            f1_score([r["gold"] for r in rows], [r["label"] for r in rows], zero_division=0), abs=1e-12
        )
        assert cell["result"]["threshold"] == 0.5 and cell["result"]["auprc"] is not None
        assert cell["samples_per_second"] > 0
    assert (folder / "report.md").read_text() == out
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"report.md", "report.csv", "report.json", "plots/f1.png", "plots/pr-openai_moderation.png"} <= set(
        manifest["files"]
    )
    assert (folder / "plots" / "f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(run.results["plots"]) == 11  # the bars, and a precision-recall curve per benchmark scored


def test_guardreasoner_8b_predictions_through_the_command(shared_data, capsys):
    folder = shared_data / "guardreasoner_benchmarks" / "test" / "8B"
    names = [name for _, name, _, _ in EIGHT_B]
    call_command(
        "evaluate", predictions=[f"GuardReasoner-8B={folder}"], benchmark=names + ["toxicchat"], bootstrap=0,
        no_plots=True, format="csv",
    )  # fmt: skip
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 1 and table[0]["model"] == "GuardReasoner-8B"
    for _, name, f1, _ in EIGHT_B:
        assert round(float(table[0][name]), 4) == f1
    assert table[0]["toxicchat"] == "" and table[0]["benchmarks_answered"] == "6"
    assert float(table[0]["average"]) == pytest.approx(sum(f1 for *_, f1, _ in EIGHT_B) / 6, abs=1e-4)
    run = EvaluationRun.objects.get()
    missing = next(cell for cell in run.cells if cell["benchmark"] == "toxicchat")
    assert missing["unsupported"] and "holds no prediction file for toxicchat" in missing["error"]


def test_command_errors(capsys):
    with pytest.raises(Exception, match="no such guard model"):
        call_command("evaluate", guard=["nobody"], all_shipped=True)
    with pytest.raises(Exception, match="choose at least one benchmark"):
        call_command("evaluate", endpoint=["m=http://127.0.0.1:9/v1"])
    with pytest.raises(Exception, match="is not shipped: give the path of a WildGuardTest"):
        call_command("evaluate", endpoint=["m=http://127.0.0.1:9/v1"], benchmark=["wildguardtest_prompt"])
    with pytest.raises(Exception, match="option threshold: must be from 0 to 1"):
        call_command("evaluate", endpoint=["m=http://127.0.0.1:9/v1"], benchmark=["xstest_prompts"], threshold=2)


def _endpoint(server, name="guard-1", **spec):
    return {"endpoint": server.url, "model": name, "prompt_format": "nemoguard", **spec}


def test_run_progress_cancel_and_resume(guard_server):
    """Cancelled between cells; a run whose worker died resumes with the cells it lacks."""
    run = start_evaluation_run(
        by=None, guards=[_endpoint(guard_server)], benchmarks=["simple_safety_tests", "xstest_prompts"],
        options={"bootstrap": 0, "plots": False},
    )  # fmt: skip
    assert (run.status, run.total, run.done) == ("pending", 0, 0)

    def cancel_after_the_first_cell(cell):
        EvaluationRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    run = run_evaluation(run, on_cell=cancel_after_the_first_cell)
    assert (run.status, run.total, run.done) == ("cancelled", 550, 100)
    assert [cell["benchmark"] for cell in run.cells] == ["simple_safety_tests"]
    assert len(guard_server.requests) == 100
    assert run_evaluation(run).status == "cancelled"  # a finished run is not run again

    EvaluationRun.objects.filter(pk=run.pk).update(status="running", cancel_requested=False)  # the worker died
    run = run_evaluation(run)
    assert (run.status, run.done) == ("succeeded", 550)
    assert len(guard_server.requests) == 550  # only the missing cell was asked
    assert [cell["benchmark"] for cell in run.cells] == ["simple_safety_tests", "xstest_prompts"]
    simple = run.cells[0]["result"]
    # the stand-in answers unsafe to everything: SimpleSafetyTests is all unsafe
    assert (simple["f1"], simple["n"], simple["threshold"], simple["auprc"]) == (1.0, 100, None, None)


def test_cancel_a_run_no_worker_took(guard_server):
    from evaluation.services import cancel_evaluation_run

    run = start_evaluation_run(by=None, guards=[_endpoint(guard_server)], benchmarks=["xstest_prompts"])
    cancel_evaluation_run(run, by=None)
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("cancelled", True)
    assert run_evaluation(run).status == "cancelled" and not guard_server.requests


def test_export_test_split_as_a_benchmark_with_categories(guard_server, project, tmp_path):
    """A project's export is a benchmark; its gold categories score the guard's categories."""
    from annotation.services import export_dataset, import_samples
    from tests.training.conftest import ROWS

    path = tmp_path / "aegis.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    import_samples(project, path, adapter="aegis2")
    export = export_dataset(project, formats=["jsonl"], split_ratios={"train": 0, "validation": 0, "test": 1.0})
    guard_server.script["answer"] = (
        '{"User Safety": "unsafe", "Response Safety": "unsafe", "Safety Categories": "Violence"}'
    )
    run = start_evaluation_run(
        by=None,
        guards=[_endpoint(guard_server)],
        benchmarks=[{"name": "export_prompt", "export": export.pk}, {"name": "export_response", "export": export.pk},
                    "openai_moderation"],
        options={"bootstrap": 0, "plots": False, "limit": 200},
    )  # fmt: skip
    assert run.benchmark_labels == [f"export{export.pk}_prompt", f"export{export.pk}_response", "openai_moderation"]
    run = run_evaluation(run)
    assert run.status == "succeeded", run.error
    prompt, response, moderation = run.cells
    assert prompt["n"] == 5 and response["n"] == 3  # every exported row; those with a response
    # prompt labels: a1, a3 (Needs Caution as unsafe), a4 unsafe; a2, a5 safe
    assert (prompt["result"]["true_positives"], prompt["result"]["false_positives"]) == (3, 2)
    same = prompt["categories"]
    assert same["mapping"]["notes"] == "same taxonomy"
    assert same["categories"]["S1"]["support"] == 2 and same["categories"]["S1"]["true_positives"] == 2
    assert same["categories"]["S11"]["recall"] == 0.0  # a1's Threat was not named
    mapped = moderation["categories"]
    assert mapped["mapping"]["source"].startswith("Aegis 2.0") and mapped["mapping"]["target"].startswith("OpenAI")
    assert mapped["categories"]["V"]["predicted"] == 200 and mapped["categories"]["V2"]["predicted"] == 200
    assert mapped["micro"]["support"] > 0
    from evaluation.reports import table_for_runs, to_markdown

    text = to_markdown(table_for_runs([run]))
    assert "Aegis 2.0 v1 → OpenAI moderation v1" in text or "→ OpenAI" in text
    assert "(same taxonomy)" in text


def test_start_checks_specs_and_permissions(guard_server, project, django_user_model):
    from annotation.models import Membership

    annotator = django_user_model.objects.create_user("ann")
    with pytest.raises(Exception, match="only project admins and staff run evaluations"):
        start_evaluation_run(by=annotator, guards=[_endpoint(guard_server)], benchmarks=["xstest_prompts"])
    admin = django_user_model.objects.create_user("padmin")
    Membership.objects.create(project=project, user=admin, role="admin")
    with pytest.raises(Exception, match="only staff may evaluate prediction files"):
        start_evaluation_run(by=admin, guards=[{"predictions": "/etc/passwd"}], benchmarks=["xstest_prompts"])
    with pytest.raises(Exception, match="only staff may evaluate benchmark files"):
        start_evaluation_run(by=admin, guards=[_endpoint(guard_server)],
                             benchmarks=[{"name": "wildguardtest_prompt", "path": "/etc/passwd"}])  # fmt: skip
    with pytest.raises(EvaluationError, match="unknown benchmark 'mmlu'"):
        start_evaluation_run(by=admin, guards=[_endpoint(guard_server)], benchmarks=["mmlu"])
    with pytest.raises(EvaluationError, match="unknown options: colour"):
        start_evaluation_run(by=admin, guards=[_endpoint(guard_server)], benchmarks=["xstest_prompts"],
                             options={"colour": 1})  # fmt: skip
    with pytest.raises(EvaluationError, match="benchmark xstest_prompts is chosen twice"):
        start_evaluation_run(by=admin, guards=[_endpoint(guard_server)], benchmarks=["xstest_prompts"] * 2)
    with pytest.raises(EvaluationError, match=r"guard \[1\]: expected an id"):
        start_evaluation_run(by=admin, guards=[{"guard": [1]}], benchmarks=["xstest_prompts"])
    with pytest.raises(EvaluationError, match="export 'x' is not an export id"):
        start_evaluation_run(
            by=admin, guards=[_endpoint(guard_server)], benchmarks=[{"name": "export_prompt", "export": "x"}]
        )
    from training.models import GuardModel

    guard = GuardModel.objects.create(name="served", kind="lora", base_model="b", path="/a")
    with pytest.raises(EvaluationError, match="options api_key cannot be set per guard"):
        start_evaluation_run(by=None, guards=[{"guard": guard.pk, "options": {"api_key": "k"}}],
                             benchmarks=["xstest_prompts"])  # fmt: skip
    two = start_evaluation_run(by=admin, guards=[_endpoint(guard_server), _endpoint(guard_server)],
                               benchmarks=["xstest_prompts"], options={"taxonomy": "aegis-1.0"})  # fmt: skip
    assert two.guard_names == ["guard-1", "guard-1 (2)"] and two.options["taxonomy"] is not None


def test_prediction_files_with_a_limit_keep_the_sampled_items(shared_data):
    """A prediction file pairs with its whole benchmark; a limited run keeps the sampled items' predictions."""
    from evaluation.benchmarks import get_benchmark
    from evaluation.predictions import read_predictions, score_predictions

    path = shared_data / "guardreasoner_benchmarks/test/8B/AegisSafetyTest/generated_predictions.jsonl"
    run = start_evaluation_run(by=None, guards=[{"predictions": str(path), "name": "gr"}], benchmarks=["aegis1_test"],
                               options={"limit": 50, "seed": 7, "bootstrap": 0, "plots": False})  # fmt: skip
    run = run_evaluation(run)
    cell = run.cells[0]
    rows = [json.loads(line) for line in (Path(run.directory) / cell["predictions"]).read_text().splitlines()]
    items = get_benchmark("aegis1_test").load(data_root=shared_data)
    chosen = {row["uid"] for row in rows}
    assert len(chosen) == 50 and (run.done, run.total) == (50, 50)
    predictions = read_predictions(path, items, get_benchmark("aegis1_test").task)
    subset = [item for item in items if item.uid in chosen]
    expected = score_predictions(subset, [p for p in predictions if p.uid in chosen], bootstrap_samples=0)
    assert cell["result"]["f1"] == expected.f1 and cell["result"]["n"] == 50


def _prompt_only_export(project, tmp_path, ratios: dict):
    """An export of the training tests' Aegis 2.0 rows without their responses."""
    from annotation.services import export_dataset, import_samples
    from tests.training.conftest import ROWS

    rows = [{**row, "response": None, "response_label": None, "response_label_source": None} for row in ROWS]
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    import_samples(project, path, adapter="aegis2")
    return export_dataset(project, formats=["jsonl"], split_ratios=ratios)


def test_an_export_is_refused_for_a_task_its_test_split_has_no_labels_for(guard_server, project, tmp_path):
    prompts = _prompt_only_export(project, tmp_path, {"train": 0, "validation": 0, "test": 1.0})
    with pytest.raises(EvaluationError) as refused:
        start_evaluation_run(by=None, guards=[_endpoint(guard_server)],
                             benchmarks=[{"name": "export_response", "export": prompts.pk}])  # fmt: skip
    assert str(refused.value) == (
        f"benchmark export_response: export {prompts.pk} of test cannot be used: "
        "its test split has no response labels"
    )
    no_test = _prompt_only_export(project, tmp_path, {"train": 1.0, "validation": 0, "test": 0})
    with pytest.raises(EvaluationError, match=f"export {no_test.pk} of test cannot be used: its test split is empty"):
        start_evaluation_run(by=None, guards=[_endpoint(guard_server)],
                             benchmarks=[{"name": "export_prompt", "export": no_test.pk}])  # fmt: skip


def test_a_run_that_cannot_read_its_export_names_the_export_not_its_folder(guard_server, project, tmp_path):
    """A run recorded before its export's labels were checked, and one whose export's files are
    gone: each error names the export as the pages do, and no folder on the server."""
    export = _prompt_only_export(project, tmp_path, {"train": 0, "validation": 0, "test": 1.0})
    spec = {"name": "export_prompt", "export": export.pk}
    recorded = start_evaluation_run(by=None, guards=[_endpoint(guard_server)], benchmarks=[spec],
                                    options={"bootstrap": 0, "plots": False})  # fmt: skip
    EvaluationRun.objects.filter(pk=recorded.pk).update(
        benchmarks=[{"name": "export_response", "export": export.pk, "label": f"export{export.pk}_response"}]
    )
    recorded = run_evaluation(EvaluationRun.objects.get(pk=recorded.pk))
    assert recorded.status == "failed"
    assert recorded.error.endswith(f"export {export.pk} of test: its test split has no response labels")
    gone = start_evaluation_run(by=None, guards=[_endpoint(guard_server)], benchmarks=[spec],
                                options={"bootstrap": 0, "plots": False})  # fmt: skip
    (Path(export.directory) / "test.jsonl").unlink()
    gone = run_evaluation(gone)
    assert gone.status == "failed"
    assert gone.error.endswith(f"export {export.pk} of test: its test split could not be read on the server")
    for run in (recorded, gone):
        assert export.directory not in run.error and Path(export.directory).name not in run.error
        assert run.results["benchmarks"][0]["error"] in run.error
