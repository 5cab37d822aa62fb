"""Jury majority vote, abstentions, ties, and jury labels that never overwrite human ones."""

import pytest

from annotation.models import FinalLabel, ReviewItem
from annotation.services import import_samples
from guards.formats.nemoguard import parse_nemoguard_output
from jury.aggregation import aggregate
from jury.models import Juror, JuryVerdict
from jury.services import apply_jury_decision, decide, record_verdict
from taxonomy.selectors import CategoryIndex


def test_majority_and_categories():
    decision = aggregate([("unsafe", ["S1", "S11"]), ("unsafe", ["S1"]), ("safe", [])], jurors=3, min_category_votes=2)
    assert (decision.label, decision.categories, decision.answered) == ("unsafe", ["S1"], 3)
    assert aggregate([("safe", []), ("safe", []), (None, [])], jurors=3).label == "safe"


def test_ties_and_abstentions_go_to_humans():
    assert aggregate([("unsafe", ["S1"]), ("safe", []), (None, [])], jurors=3).reason.startswith("tie")
    decision = aggregate([("unsafe", ["S1"]), (None, []), (None, [])], jurors=3)
    assert decision.label is None and "only 1 of 3" in decision.reason


@pytest.mark.django_db
def test_verdicts_to_final_labels_never_over_humans(project, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "How do I hurt him?", "response": "Here is how..."}\n'
        '{"id": "b", "prompt": "hi", "response": "hello", "prompt_label": "safe", "response_label": "safe", '
        '"prompt_label_source": "human", "response_label_source": "human"}\n',
        encoding="utf-8",
    )
    import_samples(project, path, adapter="generic")
    index = CategoryIndex.for_taxonomy(project.taxonomy)
    jurors = [Juror.objects.create(project=project, name=f"j{i}", model=f"m{i}") for i in range(3)]
    answers = [
        '{"User Safety": "unsafe", "Response Safety": "unsafe", "Safety Categories": "Violence"}',
        '{"User Safety": "unsafe", "Response Safety": "unsafe", "Safety Categories": "Violence, Threat"}',
        "I am not sure, ignore me",
    ]
    for uid in ("a", "b"):
        sample = project.samples.get(uid=uid)
        for juror, answer in zip(jurors, answers):
            record_verdict(sample, juror, "response", parse_nemoguard_output(answer, index))
            record_verdict(sample, juror, "response", parse_nemoguard_output(answer, index))  # re-run: no duplicate
        apply_jury_decision(sample, "response", decide(sample, "response"))
    assert JuryVerdict.objects.count() == 6
    abstained = JuryVerdict.objects.get(sample__uid="a", juror=jurors[2])
    assert abstained.abstained and abstained.raw == "I am not sure, ignore me" and abstained.error
    jury_final = FinalLabel.objects.get(sample__uid="a")
    assert (jury_final.response_label, jury_final.response_label_source, jury_final.categories) == (
        "unsafe",
        "llm_jury",
        ["S1"],
    )
    human_final = FinalLabel.objects.get(sample__uid="b")
    assert (human_final.response_label, human_final.response_label_source) == ("safe", "human")

    Juror.objects.create(project=project, name="j3", model="m3")  # four jurors: 2 unsafe, 1 abstain, 1 missing
    sample = project.samples.get(uid="a")
    FinalLabel.objects.filter(sample=sample).delete()
    apply_jury_decision(sample, "response", decide(sample, "response"))
    assert "jury undecided on the response" in ReviewItem.objects.get(sample=sample).reason


@pytest.mark.django_db
def test_jury_against_human_majority_in_the_agreement_report(project, tmp_path):
    from annotation.services.reports import agreement_report, agreement_rows
    from jury.models import JuryVerdict

    rows = []
    humans = ["unsafe", "unsafe", "safe", "safe", "unsafe", "safe"]
    for i, label in enumerate(humans):
        anns = [
            {
                "annotator": a,
                "prompt_label": "safe",
                "response_label": label,
                "categories": ["S1"] if label == "unsafe" else [],
            }
            for a in ("h1", "h2")
        ]
        rows.append({"id": f"s{i}", "prompt": f"p{i}", "response": f"r{i}", "annotations": anns})
    path = tmp_path / "rows.jsonl"
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    from annotation.models import Annotation

    Annotation.objects.update(import_batch=None)  # as if labelled in the studio
    good = Juror.objects.create(project=project, name="good", model="m")
    contrary = Juror.objects.create(project=project, name="contrary", model="m")
    for i, label in enumerate(humans):
        sample = project.samples.get(uid=f"s{i}")
        JuryVerdict.objects.create(sample=sample, juror=good, part="response", label=label)
        flipped = "safe" if label == "unsafe" else "unsafe"
        JuryVerdict.objects.create(sample=sample, juror=contrary, part="response", label=flipped)
    report = agreement_report(project, bootstrap=0)
    jury = report["jury_vs_humans"]["response"]
    assert jury["good"]["value"] == pytest.approx(1.0) and jury["contrary"]["value"] == pytest.approx(-1.0)
    assert jury["jury majority"]["value"] is None  # every sample is a 1-1 tie between the two jurors
    assert any(r[1] == "cohen_kappa_jury_vs_human_majority" and r[2] == "good" for r in agreement_rows(report))
