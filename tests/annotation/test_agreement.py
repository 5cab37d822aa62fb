"""Agreement statistics: real XSTest annotations against an independent computation, edge cases."""

import csv
import json
from io import StringIO

import krippendorff
import numpy as np
import pytest
from django.core.management import call_command
from sklearn.metrics import cohen_kappa_score

from annotation.agreement import Ratings, fleiss_kappa, krippendorff_alpha, leave_one_out, masi_distance
from annotation.models import Membership
from annotation.services import import_samples
from annotation.services.reports import agreement_report

MODELS = ["gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct"]


@pytest.mark.django_db
def test_xstest_alpha_and_kappa_match_an_independent_computation(project, shared_data):
    columns = {"annotation_1": [], "annotation_2": []}
    for model in MODELS:
        path = shared_data / f"xstest/model_completions/xstest_v2_completions_{model}.csv"
        import_samples(project, path, adapter="xstest_completions")
        for row in csv.DictReader(path.open(encoding="utf-8")):
            for column in columns:
                columns[column].append(row[column])
    codes = {value: i for i, value in enumerate(sorted(set(columns["annotation_1"]) | set(columns["annotation_2"])))}
    data = np.array([[codes[v] for v in columns[c]] for c in columns], dtype=float)
    expected_alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    expected_kappa = cohen_kappa_score(columns["annotation_1"], columns["annotation_2"])

    report = agreement_report(project, bootstrap=100)
    refusal = report["fields"]["response_refusal"]
    assert refusal["alpha"]["units"] == 2250
    assert refusal["alpha"]["value"] == pytest.approx(expected_alpha, abs=1e-9)
    (pair,) = refusal["cohen_kappa_pairs"]
    assert pair["value"] == pytest.approx(expected_kappa, abs=1e-9)
    assert refusal["alpha"]["ci95"][0] < expected_alpha < refusal["alpha"]["ci95"][1]
    # two raters per unit throughout: Fleiss' kappa is defined
    assert refusal["fleiss_kappa"]["value"] is not None


def ratings(rows):
    result = Ratings()
    for unit, annotator, value in rows:
        result.add(unit, annotator, value)
    return result


def test_reference_example_from_krippendorff():
    # Krippendorff's reliability data example (nominal alpha = 0.691358)
    table = [
        [None, None, None, None, None, 3, 4, 1, 2, 1, 1, 3, 3, None, 3],
        [1, None, 2, 1, 3, 3, 4, 3, None, None, None, None, None, None, None],
        [None, None, 2, 1, 3, 4, 4, None, 2, 1, 1, 3, 3, None, 4],
    ]
    data = ratings((unit, coder, value) for coder, row in enumerate(table) for unit, value in enumerate(row))
    assert krippendorff_alpha(data).value == pytest.approx(0.691358, abs=1e-6)


def test_all_identical_labels_make_alpha_undefined_not_nan():
    stat = krippendorff_alpha(ratings([(u, a, "safe") for u in range(5) for a in "AB"]))
    assert stat.value is None and "same value" in stat.reason
    assert fleiss_kappa(ratings([(u, a, "safe") for u in range(5) for a in "AB"])).value is None


def test_single_annotator_and_no_overlap():
    stat = krippendorff_alpha(ratings([(u, "A", "safe" if u % 2 else "unsafe") for u in range(6)]))
    assert stat.value is None and "two or more ratings" in stat.reason
    data = ratings([(1, "A", "safe"), (1, "B", "unsafe"), (2, "A", "unsafe"), (2, "B", "unsafe"), (3, "C", "safe")])
    loo = {row["annotator"]: row for row in leave_one_out(data)}
    assert loo["C"] == {"annotator": "C", "units": 0, "agreement": None}


def test_ties_and_missing_labels():
    data = ratings(
        [
            (1, "A", "safe"),
            (1, "B", "unsafe"),
            (1, "C", "safe"),
            (2, "A", "unsafe"),
            (2, "B", "unsafe"),
            (3, "A", "safe"),
        ]
    )
    loo = {row["annotator"]: row for row in leave_one_out(data)}
    # unit 1 for A: others B=unsafe, C=safe is a tie and is left out; unit 2: B says unsafe = A
    assert loo["A"] == {"annotator": "A", "units": 1, "agreement": 1.0}
    assert fleiss_kappa(data).value is None  # 3 raters on unit 1, 2 on unit 2
    assert krippendorff_alpha(data).units == 2


def test_masi_distance():
    a, b = frozenset({"S1"}), frozenset({"S1", "S11"})
    assert masi_distance(a, a) == 0
    assert masi_distance(a, b) == pytest.approx(1 - 0.5 * 2 / 3)
    assert masi_distance(a, frozenset({"S2"})) == 1
    assert masi_distance(frozenset(), frozenset()) == 0


@pytest.mark.django_db
def test_report_command_and_api(project, tmp_path, capsys, client, django_user_model):
    rows = [
        {
            "prompt": f"p{i}",
            "annotations": [
                {"annotator": "ann-a", "prompt_label": "unsafe", "categories": ["S1"]},
                {
                    "annotator": "ann-b",
                    "prompt_label": "unsafe" if i % 3 else "safe",
                    "categories": ["S1"] if i % 3 else [],
                },
            ],
        }
        for i in range(12)
    ]
    path = tmp_path / "two.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    call_command("agreement_report", project="test", format="csv", bootstrap=10)
    table = list(csv.reader(StringIO(capsys.readouterr().out)))
    assert table[0][:4] == ["field", "statistic", "who", "value"]
    assert any(r[0] == "prompt_label" and r[1] == "krippendorff_alpha" for r in table)
    assert any(r[0] == "category S1" for r in table)
    call_command("agreement_report", project="test", format="json", bootstrap=0)
    report = json.loads(capsys.readouterr().out)
    assert report["fields"]["prompt_label"]["alpha"]["units"] == 12

    reviewer = django_user_model.objects.create_user("rev")
    client.force_login(reviewer)
    assert client.get(f"/api/projects/{project.pk}/agreement/").status_code == 403
    Membership.objects.create(project=project, user=reviewer, role="annotator")
    assert client.get(f"/api/projects/{project.pk}/agreement/").status_code == 403
    Membership.objects.create(project=project, user=reviewer, role="reviewer")
    assert client.get(f"/api/projects/{project.pk}/agreement/").json()["fields"]["prompt_label"]["alpha"]["units"] == 12
    download = client.get(f"/api/projects/{project.pk}/agreement/?as=csv")
    assert download["Content-Type"] == "text/csv" and b"krippendorff_alpha" in download.content


def test_masi_alpha_and_confusion_match_the_package_and_brute_force():
    import random
    from itertools import combinations

    from annotation.agreement import confusion_matrix

    rng = random.Random(7)
    sets = [frozenset(), frozenset({"S1"}), frozenset({"S1", "S11"}), frozenset({"S8"}), frozenset({"S8", "S10"})]
    data = ratings(
        (unit, annotator, rng.choice(sets[:2] if unit % 2 else sets))
        for unit in range(60)
        for annotator in rng.sample("ABCDE", rng.randint(1, 4))
    )
    ours = krippendorff_alpha(data, distance=masi_distance, bootstrap=50)
    domain = sorted({v for r in data.by_unit.values() for v in r.values()}, key=str)
    index = {v: i for i, v in enumerate(domain)}
    table = np.full((5, 60), np.nan)
    for unit, rated in data.by_unit.items():
        for annotator, value in rated.items():
            table["ABCDE".index(annotator), unit] = index[value]
    distances = np.array([[masi_distance(a, b) for b in domain] for a in domain])
    expected = krippendorff.alpha(
        reliability_data=table,
        value_domain=list(range(len(domain))),
        level_of_measurement=lambda v1, v2, i1, i2, n_v, dtype=np.float64: distances[i1, i2],
    )
    assert ours.value == pytest.approx(expected, abs=1e-9)
    assert ours.low <= ours.value <= ours.high

    labels = ratings((unit, annotator, rng.choice("xyz")) for unit in range(40) for annotator in "ABC")
    brute = {}
    for rated in labels.by_unit.values():
        for a, b in combinations(rated.values(), 2):
            brute[(a, b)] = brute.get((a, b), 0) + 1
            brute[(b, a)] = brute.get((b, a), 0) + 1
    matrix = confusion_matrix(labels)
    for i, a in enumerate(matrix["values"]):
        for j, b in enumerate(matrix["values"]):
            assert matrix["counts"][i][j] == brute.get((a, b), 0)
    assert krippendorff_alpha(labels).value == pytest.approx(
        krippendorff.alpha(
            reliability_data=[[" xyz".index(labels.by_unit[u][a]) for u in range(40)] for a in "ABC"],
            level_of_measurement="nominal",
        ),
        abs=1e-9,
    )
