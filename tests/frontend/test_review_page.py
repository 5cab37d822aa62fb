"""The review page: nothing preselected without a proposal, a response label only where there is a
response, the queue paged and filtered by reason."""

import json
import re

import pytest

from annotation.models import FinalLabel, ReviewItem, Sample
from annotation.services import add_member, import_samples
from annotation.services.adjudication import open_review

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer_client(client, project, django_user_model, tmp_path):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    django_user_model.objects.create_user("rita")
    add_member(project, by=boss, username="rita", role="reviewer")
    rows = [{"id": "with-response", "prompt": "How do I pick a lock?", "response": "Use a <b>tension</b> wrench."}]
    rows += [{"id": f"p{i:02}", "prompt": f"prompt {i}"} for i in range(24)]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    for sample in Sample.objects.order_by("pk"):
        open_review(sample, "flagged by ann0: look" if sample.uid == "p03" else "no majority label")
    client.force_login(django_user_model.objects.get(username="rita"))
    return client


def forms(page: str) -> list[str]:
    return re.findall(r'<form method="post">(.*?)</form>', page, re.S)


def test_nothing_is_preselected_and_the_response_is_offered_only_when_there_is_one(reviewer_client, project):
    page = reviewer_client.get(f"/projects/{project.pk}/review/").content.decode()
    first, second = forms(page)[:2]
    assert "with-response" in page and "&lt;b&gt;tension&lt;/b&gt;" in page
    assert first.count("<select") == 2 and 'name="response_label" required' in first
    assert "(no response)" not in page
    assert second.count("<select") == 1 and "response_label" not in second  # prompt only
    selected = re.findall(r'<option value="([^"]*)" selected>', first)
    assert selected == ["", ""]  # "choose…" for the prompt and the response
    assert "checked" not in first


def test_a_proposed_label_is_preselected(reviewer_client, project):
    sample = Sample.objects.get(uid="with-response")
    FinalLabel.objects.create(sample=sample, prompt_label="unsafe", prompt_label_source="llm_jury",
                              response_label="safe", response_label_source="llm_jury", categories=["S3"])  # fmt: skip
    first = forms(reviewer_client.get(f"/projects/{project.pk}/review/").content.decode())[0]
    assert re.findall(r'<option value="([^"]*)" selected>', first) == ["unsafe", "safe"]
    assert 'value="S3" checked' in first and "proposed by llm_jury" in first


def test_the_queue_is_paged_and_filtered(reviewer_client, project):
    url = f"/projects/{project.pk}/review/"
    first = reviewer_client.get(url).content.decode()
    assert len(forms(first)) == 20 and "25 waiting" in first and "page 1 of 2" in first
    second = reviewer_client.get(url, {"page": 2}).content.decode()
    assert len(forms(second)) == 5 and "p23" in second and "p23" not in first
    flagged = reviewer_client.get(url, {"reason": "flagged"}).content.decode()
    assert len(forms(flagged)) == 1 and "p03" in flagged and "1 waiting (flagged)" in flagged
    # deciding keeps the reviewer on the filtered page they were on
    sample = Sample.objects.get(uid="p03")
    done = reviewer_client.post(f"{url}?reason=flagged", {"sample": sample.pk, "prompt_label": "safe"})
    assert done.status_code == 302 and done["Location"] == f"{url}?reason=flagged"
    assert ReviewItem.objects.filter(resolved_at__isnull=True).count() == 24
    api = reviewer_client.get(f"/api/projects/{project.pk}/review/", {"reason": "no-majority", "offset": 20})
    assert [item["sample"]["uid"] for item in api.json()] == ["p20", "p21", "p22", "p23"]
    assert reviewer_client.get(f"/api/projects/{project.pk}/review/", {"reason": "odd"}).status_code == 400
