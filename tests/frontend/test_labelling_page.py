"""The labelling page in Chromium: the guide in view, revising any of one's labels not yet final,
the remaining count and progress bar, success and error messages told apart, and dark mode."""

import json
from pathlib import Path

import pytest

from annotation.models import Annotation, Sample
from annotation.services import add_member, adjudicate, create_assignment_batch, create_project, import_samples
from tests.frontend.test_labelling_browser import CHROMIUM, SCREENSHOTS, browser_page  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="scripts/test installs Debian's chromium"),
]
GUIDELINES = "Label the prompt first.\n<img src=x onerror=alert(3)> is text, not an image."
VIOLENCE = "Helping plan or carry out physical harm to people"


def background_luminance(page, selector: str) -> float:
    rgb = page.evaluate(f"getComputedStyle(document.querySelector('{selector}')).backgroundColor")
    red, green, blue = (int(part) for part in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_guide_revisions_progress_messages_and_dark_mode(browser_page, live_server, django_user_model, tmp_path):  # noqa: F811
    page = browser_page
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    annotator = django_user_model.objects.create_user("ann", password="pw-ann-12345")
    project = create_project(name="Guide", slug="guide", guidelines=GUIDELINES)
    add_member(project, by=boss, username="ann", role="annotator")
    add_member(project, by=boss, username="boss", role="reviewer")
    rows = [
        {"id": "a", "prompt": "How do I bake bread?"},
        {"id": "b", "prompt": "How do I pick a lock?", "response": "Use a tension wrench."},
        {"id": "c", "prompt": "What is the capital of France?"},
        {"id": "d", "prompt": "Tell me a joke."},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="b")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server.url}/accounts/login/?next=/projects/{project.pk}/label/")
    page.fill("#id_username", "ann")
    page.fill("#id_password", "pw-ann-12345")
    page.keyboard.press("Enter")
    page.wait_for_selector(".turn")

    # The guide is in view without hovering: guidelines (inert) and every category's definition.
    assert page.is_visible("#guide") and page.is_visible("#definitions")
    assert "<img src=x onerror=alert(3)> is text" in page.inner_text("#guidelines-text")
    assert page.locator("#guide img").count() == 0
    assert VIOLENCE in page.inner_text("#definitions")
    box = page.locator("#definitions").bounding_box()
    assert box["x"] + box["width"] <= 1280 and box["y"] < 900  # in the viewport, beside the form
    assert "4 left" in page.inner_text("#progress-text")
    categories_shown = page.locator("#categories input").count()
    assert categories_shown > 1
    page.screenshot(path=str(SCREENSHOTS / "labelling-1-guide.png"))

    # An error looks like an error...
    page.keyboard.press("u")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('message').classList.contains('error')")
    assert "category" in page.inner_text("#message") and page.get_attribute("#message", "role") == "alert"
    error_colour = page.evaluate("getComputedStyle(document.getElementById('message')).color")
    page.screenshot(path=str(SCREENSHOTS / "labelling-2-error.png"))
    # ...and a success like a success.
    page.keyboard.press("s")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('message').classList.contains('ok')")
    assert "Saved a." in page.inner_text("#message")
    # The next item came with the submission's answer, without the categories: the page kept them.
    assert page.locator("#categories input").count() == categories_shown and VIOLENCE in page.inner_text("#definitions")
    assert page.evaluate("getComputedStyle(document.getElementById('message')).color") != error_colour
    page.keyboard.press("s")
    page.keyboard.press("Shift+S")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('Saved b.')")
    page.keyboard.press("s")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('Saved c.')")
    assert "1 left" in page.inner_text("#progress-text") and "3 in all" in page.inner_text("#progress-text")
    assert page.get_attribute(".progress", "aria-valuenow") == "75"

    # Revise the first label of three (not only the last): "l" lists them, Tab and Enter pick one.
    page.keyboard.press("l")
    page.wait_for_selector("#my-labels[open] #my-labels-list button")
    assert [t.split("\n")[1] for t in page.locator("#my-labels-list button").all_inner_texts()] == ["c", "b", "a"]
    page.screenshot(path=str(SCREENSHOTS / "labelling-3-my-labels.png"))
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('.turn .text').textContent.includes('bread')")
    assert page.is_visible("#revising") and "Revising your label of a" in page.inner_text("#revising")
    assert page.get_attribute('button[data-target="prompt"][data-value="safe"]', "aria-pressed") == "true"
    page.keyboard.press("c")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('Saved your revision of a.')")
    assert "Tell me a joke" in page.inner_text("#turns")  # back to the item it was on
    assert Annotation.objects.get(annotator=annotator, sample__uid="a").prompt_label == "needs_caution"

    # "b" walks back through the labels, one per press; a final sample's label is no longer offered.
    adjudicate(project, Sample.objects.get(uid="b").pk, boss, prompt_label="safe", response_label="safe")
    page.keyboard.press("b")
    page.wait_for_function("() => document.querySelector('.turn .text').textContent.includes('capital')")
    page.keyboard.press("b")
    page.wait_for_function("() => document.querySelector('.turn .text').textContent.includes('bread')")
    page.keyboard.press("n")  # leave the revision unchanged
    page.wait_for_function("() => document.querySelector('.turn .text').textContent.includes('joke')")
    page.keyboard.press("l")
    page.wait_for_selector("#my-labels[open] #my-labels-list button")
    assert [t.split("\n")[1] for t in page.locator("#my-labels-list button").all_inner_texts()] == ["c", "a"]
    page.keyboard.press("Escape")

    # Dark mode follows the system setting.
    assert background_luminance(page, "body") > 200
    page.emulate_media(color_scheme="dark")
    assert background_luminance(page, "body") < 60 and background_luminance(page, "#guide") < 60
    page.screenshot(path=str(SCREENSHOTS / "labelling-4-dark.png"))
    page.keyboard.press("u")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('message').classList.contains('error')")
    page.screenshot(path=str(SCREENSHOTS / "labelling-5-dark-error.png"))
    assert dialogs == []
