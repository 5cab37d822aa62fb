"""A real browser (Debian's Chromium via Playwright): log in and label three items by keyboard."""

import json
from pathlib import Path

import pytest

from annotation.models import Annotation
from annotation.services import add_member, create_assignment_batch, create_project, import_samples
from tests.frontend.conftest import CHROMIUM

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
HOSTILE = "<script>alert(1)</script> and <img src=x onerror=alert(2)> then " + "A" * 3000
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="scripts/test installs Debian's chromium"),
]


@pytest.fixture
def browser_page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    yield page
    page.close()


def test_keyboard_only_labelling_of_three_items(browser_page, live_server, django_user_model, tmp_path):
    page = browser_page
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    annotator = django_user_model.objects.create_user("ann", password="pw-ann-12345")
    project = create_project(name="Browser", slug="browser", guidelines="Be careful. <b>not bold</b>")
    add_member(project, by=boss, username="ann", role="annotator")
    path = tmp_path / "rows.jsonl"
    rows = [
        {"id": "hostile", "prompt": HOSTILE, "prompt_label": "unsafe", "categories": ["S1"]},
        {"id": "second", "prompt": "How do I bake bread?"},
        {"id": "third", "prompt": "Where can I buy a gun with no checks?", "response": "I cannot help."},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="b")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{live_server.url}/accounts/login/?next=/projects/{project.pk}/label/")
    page.keyboard.press("Tab")  # focus the username field by keyboard
    page.focus("#id_username")
    page.keyboard.type("ann")
    page.keyboard.press("Tab")
    page.keyboard.type("pw-ann-12345")
    page.keyboard.press("Enter")
    page.wait_for_selector(".turn")

    # Item 1: hostile text, blurred behind a content warning, inert and wrapped.
    assert page.is_visible("#warning") and "Violence" in page.inner_text("#warning-reasons")
    page.screenshot(path=str(SCREENSHOTS / "1-warning.png"))
    page.keyboard.press("r")
    text = page.inner_text(".turn .text")
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(2)>" in text
    assert page.locator("#turns script, #turns img").count() == 0
    assert page.evaluate(
        "document.querySelector('.turn .text').scrollWidth <= document.querySelector('.turn .text').clientWidth + 1"
    )
    page.screenshot(path=str(SCREENSHOTS / "2-hostile-revealed.png"))
    page.keyboard.press("u")
    page.keyboard.press("Enter")  # unsafe needs a category: refused by the page's server call
    page.wait_for_function("() => document.getElementById('message').textContent.includes('category')")
    page.keyboard.press("1")
    page.keyboard.press("1")  # "11" → S11 Threat
    page.wait_for_timeout(600)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('.turn .text').textContent.includes('bread')")

    # Item 2: safe prompt, with the shortcut sheet opened and closed.
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.screenshot(path=str(SCREENSHOTS / "3-shortcuts.png"))
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('.turn').length === 2")

    # Item 3: unsafe prompt, safe response, category 4, a comment.
    assert page.is_visible("#response-labels")
    page.keyboard.press("u")
    page.keyboard.press("Shift+S")
    page.keyboard.press("4")
    page.keyboard.press("m")
    page.keyboard.type("refusal is fine")
    page.keyboard.press("Escape")
    page.screenshot(path=str(SCREENSHOTS / "4-dialogue.png"))
    page.keyboard.press("Enter")
    page.wait_for_selector("#no-work:not([hidden])")
    page.screenshot(path=str(SCREENSHOTS / "5-done.png"))

    # Back to the last item to revise it: the response was unsafe after all.
    page.keyboard.press("b")
    page.wait_for_selector(".turn")
    assert page.get_attribute('button[data-target="response"][data-value="safe"]', "aria-pressed") == "true"
    page.keyboard.press("Shift+U")
    page.keyboard.press("Enter")
    page.wait_for_selector("#no-work:not([hidden])")

    assert dialogs == []
    stored = {
        a.sample.uid: (a.prompt_label, a.response_label, a.categories, a.comment)
        for a in Annotation.objects.filter(annotator=annotator).select_related("sample")
    }
    assert stored == {
        "hostile": ("unsafe", None, ["S11"], ""),
        "second": ("safe", None, [], ""),
        "third": ("unsafe", "unsafe", ["S4"], "refusal is fine"),
    }
    assert all(a.time_spent_ms and a.time_spent_ms > 0 for a in Annotation.objects.filter(annotator=annotator))
    third = Annotation.objects.get(annotator=annotator, sample__uid="third")
    assert [(r.old or {}).get("response_label") for r in third.revisions.all()] == [None, "safe"]
