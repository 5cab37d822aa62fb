"""The whole admin loop in the app, in Chromium: create a project, add members, upload a real file,
watch the import, queue, label as three annotators, review, export, download, load with `datasets`;
then the sample browser's search and filters. Runs on both databases (SQLite FTS5 / PostgreSQL)."""

import json
from pathlib import Path

import pytest

from annotation.exporting import EXPORT_COLUMNS
from annotation.models import FinalLabel, Project
from tests.conftest import USES_POSTGRES
from tests.frontend.conftest import CHROMIUM

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots" / "console"
HH_RLHF = "hh_rlhf_harmless_base/test.jsonl.gz"
PASSWORD = "pw-loop-12345"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="scripts/test installs Debian's chromium"),
]


@pytest.fixture
def accounts(django_user_model):
    django_user_model.objects.create_user("lead", password=PASSWORD, is_staff=True)
    for name in ("annotator1", "annotator2", "annotator3", "reviewer1"):
        django_user_model.objects.create_user(name, password=PASSWORD)


def signed_in(browser, server: str, username: str, path: str):
    """A fresh browser session signed in as ``username`` on ``path``."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (errors.append(dialog.message), dialog.dismiss()))
    page.errors = errors
    page.goto(f"{server}/accounts/login/?next={path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    page.wait_for_load_state()
    return page


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{'pg' if USES_POSTGRES else 'sqlite'}-{name}.png"), full_page=True)


def label_items(page, keys: list[str]) -> int:
    """Labels items by keyboard until the queue is empty; returns how many."""
    done = 0
    while True:
        page.wait_for_selector(".turn .text, #no-work:not([hidden])")
        if page.is_visible("#no-work"):
            return done
        before = page.inner_text("#turns")
        for key in keys:
            page.keyboard.press(key)
            if key.isdigit():
                page.wait_for_timeout(600)  # the page waits for a second digit
        page.keyboard.press("Enter")
        page.wait_for_function(
            "([before]) => !document.getElementById('no-work').hidden"
            " || document.getElementById('turns').innerText !== before",
            arg=[before],
        )
        done += 1


def test_the_admin_loop_in_the_app(browser, live_server, accounts, shared_data, celery_worker, tmp_path):
    server = live_server.url
    lead = signed_in(browser, server, "lead", "/console/")

    # Create the project.
    lead.click("text=Console")
    lead.fill("#id_name", "Loop <b>project</b>")
    lead.fill("#id_slug", "loop")
    lead.fill("#id_annotations_per_sample", "3")
    lead.select_option("#id_needs_caution_policy", "unsafe")
    lead.fill("#id_guidelines", "Label the prompt, then the response.")
    shot(lead, "1-create")
    lead.click("text=Create project")
    assert "Project “Loop <b>project</b>” created" in lead.inner_text(".flash-success")
    project = Project.objects.get(slug="loop")

    # Members: three annotators and a reviewer; one role changed on the way.
    for name, role in [("annotator1", "annotator"), ("annotator2", "annotator"), ("annotator3", "reviewer")]:
        lead.fill("#id_username", name)
        lead.select_option("#id_role", role)
        lead.click("#add-member button[name=add]")
        assert name in lead.inner_text(".flash-success")
    row = lead.locator("tr[data-username=annotator3]")
    row.locator("select[name=role]").select_option("annotator")
    row.locator("button[name=change]").click()
    assert lead.inner_text(".flash-success") == "Role changed."
    lead.fill("#id_username", "reviewer1")
    lead.select_option("#id_role", "reviewer")
    lead.click("#add-member button[name=add]")
    shot(lead, "2-members")
    assert sorted(project.memberships.values_list("user__username", "role")) == [
        ("annotator1", "annotator"),
        ("annotator2", "annotator"),
        ("annotator3", "annotator"),
        ("reviewer1", "reviewer"),
    ]

    # Upload a real file, adapter detected, and watch the import to its end.
    lead.click("nav.tabs >> text=Upload")
    lead.set_input_files("#id_file", str(shared_data / HH_RLHF))
    lead.click("text=Upload and import")
    lead.wait_for_selector("#import-status[data-status=succeeded]", timeout=120_000)
    assert lead.inner_text("#rows-read") == "2312" and int(lead.inner_text("#created")) > 4000
    assert "adapter hh_rlhf" in lead.inner_text("#import-status")
    assert lead.is_visible("#import-done") and not lead.is_visible("#import-error")
    shot(lead, "3-import-done")

    # Queue two samples: one message.
    lead.click("text=Browse and queue samples")
    lead.fill("#queue input[name=limit]", "2")
    lead.fill("#queue input[name=name]", "loop batch")
    lead.click("text=Queue matching samples")
    assert lead.locator(".flash li").count() == 1
    assert lead.inner_text(".flash-success").startswith("Queued 2 samples in batch “loop batch” (k = 3)")
    shot(lead, "4-queued")

    # Three annotators disagree on the prompt (safe, unsafe + S1, needs caution): both go to review.
    for name, keys in [
        ("annotator1", ["s", "Shift+S"]),
        ("annotator2", ["u", "1", "Shift+S"]),
        ("annotator3", ["c", "Shift+S"]),
    ]:
        page = signed_in(browser, server, name, f"/projects/{project.pk}/label/")
        assert label_items(page, keys) == 2, name
        assert page.errors == [], page.errors
        if name == "annotator3":
            shot(page, "5-labelled")
        page.context.close()

    # The reviewer decides both.
    reviewer = signed_in(browser, server, "reviewer1", f"/projects/{project.pk}/review/")
    shot(reviewer, "6-review")
    for _ in range(2):
        item = reviewer.locator(".review-item").first
        item.locator("select[name=prompt_label]").select_option("unsafe")
        item.locator("select[name=response_label]").select_option("safe")
        item.locator("input[name=categories][value=S1]").check()
        item.locator("button[type=submit]").click()
        reviewer.wait_for_load_state()
    assert reviewer.locator(".review-item").count() == 0
    assert FinalLabel.objects.filter(sample__project=project, prompt_label_source="adjudicated").count() == 2

    # Export and download each file, then load them with `datasets`.
    lead.goto(f"{server}/console/projects/{project.pk}/exports/")
    lead.fill("#id_train", "1")
    lead.fill("#id_validation", "0")
    lead.fill("#id_test", "0")
    lead.click("text=Export labelled samples")
    lead.wait_for_selector("a.download >> text=Download train.parquet", timeout=120_000)
    shot(lead, "7-export")
    saved = {}
    for name in ("train.jsonl", "train.parquet", "manifest.json"):
        with lead.expect_download() as download:
            lead.click(f"a.download >> text=Download {name}")
        saved[name] = tmp_path / name
        download.value.save_as(saved[name])
    manifest = json.loads(saved["manifest.json"].read_text())
    assert manifest["counts"]["train"]["rows"] == 2 and set(manifest["files"]) == {
        "train.jsonl",
        "train.parquet",
        "train.csv",
        "README.md",
    }

    import datasets

    for fmt, name in (("json", "train.jsonl"), ("parquet", "train.parquet")):
        loaded = datasets.load_dataset(fmt, data_files=str(saved[name]), cache_dir=str(tmp_path / f"cache-{fmt}"))
        train = loaded["train"]
        assert train.column_names == list(EXPORT_COLUMNS) and train.num_rows == 2
        assert set(train["prompt_label"]) == {"unsafe"} and set(train["prompt_label_source"]) == {"adjudicated"}
        assert set(train["violated_categories"]) == {"Violence"}

    # The sample browser: search, filters, a sample's whole record.
    lead.goto(f"{server}/console/projects/{project.pk}/samples/")
    lead.select_option("select[name=status]", "final")
    lead.fill("input[name=annotator]", "annotator2")
    lead.click("#filters button[type=submit]")
    assert lead.locator("#samples tbody tr").count() == 2
    first_prompt = FinalLabel.objects.filter(sample__project=project).order_by("-sample_id").first().sample.prompt
    word = max((w for w in first_prompt.split() if w.isalpha()), key=len)
    lead.fill("input[name=q]", word)
    lead.click("#filters button[type=submit]")
    shot(lead, "8-browser-search")
    rows = lead.locator("#samples tbody tr")
    assert rows.count() >= 1 and word.lower() in rows.first.inner_text().lower()
    rows.first.locator("a").click()
    annotators = lead.locator("#annotations tbody tr td:first-child").all_inner_texts()
    assert sorted(annotators) == ["annotator1", "annotator2", "annotator3"]
    assert "adjudicated" in lead.inner_text("#final") and lead.locator("#revisions tbody tr").count() >= 3
    shot(lead, "9-sample")
    lead.goto(f"{server}/console/projects/{project.pk}/samples/?source=hh_rlhf&label=none&status=new&page_size=25")
    assert lead.locator("#samples tbody tr").count() == 25
    lead.click("#next-page")
    assert lead.locator("#samples tbody tr").count() == 25 and "cursor=" in lead.url
    assert lead.errors == [], lead.errors

    # Annotators never see the browser (blind labelling).
    annotator = signed_in(browser, server, "annotator1", f"/console/projects/{project.pk}/samples/")
    assert "403" in annotator.title() or annotator.locator("#samples").count() == 0
