"""Content-Security-Policy: the main pages (an evaluation run and a live ensemble among them, with
hostile names and text) load in Chromium with no violation reported."""

import json
from pathlib import Path

import pytest

from annotation.services import add_member, create_assignment_batch, create_project, import_samples
from evaluation.services import run_evaluation, start_evaluation_run
from jury.models import Juror
from moderation.services import create_ensemble, moderate
from tests.frontend.conftest import CHROMIUM
from tests.guards.conftest import guard_server  # noqa: F401  (the stand-in guard server)

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)><style>body{display:none}</style>"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="scripts/test installs Debian's chromium"),
]


def test_the_header_is_sent(client):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "object-src 'none'" in policy
    assert "unsafe-inline" not in policy


def test_main_pages_have_no_csp_violation(live_server, django_user_model, tmp_path, browser, guard_server):  # noqa: F811
    django_user_model.objects.create_user("boss", password="pw-boss-12345", is_staff=True, is_superuser=True)
    project = create_project(name="CSP", slug="csp", guidelines=HOSTILE)
    boss = django_user_model.objects.get(username="boss")
    add_member(project, by=boss, username="boss", role="admin")
    django_user_model.objects.create_user("ann", password="pw-ann-12345")
    add_member(project, by=boss, username="ann", role="annotator")
    path = tmp_path / "rows.jsonl"
    rows = [
        {"id": f"r{i}", "prompt": f"{HOSTILE} {i}", "prompt_label": "unsafe", "categories": ["S1"]} for i in range(3)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="b")
    # an evaluation run (table, plot) and an ensemble with a decision, named and fed hostile text
    juror = Juror.objects.create(project=project, name=HOSTILE, model="guard-1", base_url=guard_server.url)
    run = start_evaluation_run(
        by=boss, guards=[{"juror": juror.pk}], benchmarks=["simple_safety_tests"],
        options={"limit": 20, "bootstrap": 0}, name=HOSTILE,
    )  # fmt: skip
    run = run_evaluation(run)
    assert run.status == "succeeded" and run.results["plots"], run.error
    ensemble = create_ensemble(
        name=HOSTILE, slug="csp-ensemble", experts=[{"juror": juror.pk, "name": HOSTILE}], by=boss, project=project
    )
    moderate(ensemble, f"{HOSTILE} prompt", f"{HOSTILE} response", by=boss)
    pages = [
        "/",
        f"/projects/{project.pk}/dashboard/",
        f"/projects/{project.pk}/agreement/",
        f"/projects/{project.pk}/review/",
        f"/projects/{project.pk}/jury/",
        f"/projects/{project.pk}/training/",
        "/models/",
        "/evaluation/",
        f"/evaluation/{run.pk}/",
        f"/evaluation/compare/?runs={run.pk}",
        "/moderation/",
        f"/moderation/{ensemble.slug}/",
        "/api/docs/",
        "/admin/",
        "/admin/annotation/sample/",
    ]
    violations: list[str] = []
    context = browser.new_context()
    page = context.new_page()
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text
            else None
        ),
    )
    for username, password, urls in (
        ("boss", "pw-boss-12345", pages),
        ("ann", "pw-ann-12345", [f"/projects/{project.pk}/label/"]),
    ):
        context.clear_cookies()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        for url in urls:
            response = page.goto(f"{live_server.url}{url}")
            assert response is not None and response.status < 400, (url, response and response.status)
            page.wait_for_load_state("networkidle")
    page.wait_for_selector(".turn")
    context.close()
    assert violations == []
