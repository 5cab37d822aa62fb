"""The README's first command walked in Chromium: `scripts/demo --no-install` (migrate, load_demo,
a real Celery worker on the embedded broker, runserver) in processes of its own, then the admin
signs in, trains the MiniLM guard on the demo's export from the training page and evaluates it from
the evaluation page, watching both jobs' live progress without a reload. The smallest run the page
allows (one optimiser step on 32-token inputs, 20 items per benchmark) keeps it to a few minutes on
two cores; each step's time is written beside the screenshots under test-output/.

The README's timings of the full walk come from this test with the page's settings and limit set
by environment, e.g. ``AEGIS_DEMO_WALK_TRAINING='{"epochs": 1}' AEGIS_DEMO_WALK_LIMIT=0``
(0: every item of each benchmark) and ``AEGIS_DEMO_WALK_MINUTES=60``."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.frontend.conftest import CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots" / "demo"
TRAINING = os.environ.get("AEGIS_DEMO_WALK_TRAINING", '{"max_steps": 1, "max_length": 32}')
LIMIT = int(os.environ.get("AEGIS_DEMO_WALK_LIMIT", "20"))
MINUTES = float(os.environ.get("AEGIS_DEMO_WALK_MINUTES", "5"))
pytestmark = [
    pytest.mark.once,  # trains a model, on the demo's own SQLite database
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="scripts/test installs Debian's chromium"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def demo(tmp_path, shared_data):
    """scripts/demo on a free port with its var/ under tmp_path; yields the server's URL, the var
    folder, the script's log and the seconds it took until the page answers and the worker is up.
    Ends as Ctrl-C does (the script stops its worker)."""
    var, log_path, port = tmp_path / "var", tmp_path / "demo.log", free_port()
    unset = {"DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "STATIC_ROOT", "DEBUG", "AEGIS_WORKER_BEAT_SECONDS"}
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env.update(AEGIS_VAR_DIR=str(var), AEGIS_SHARED_DATA=str(shared_data), PORT=str(port))
    with log_path.open("w") as log:  # SIGINT restored: Ctrl-C reaches runserver even if pytest's parent ignores it
        script = subprocess.Popen(
            [str(ROOT / "scripts" / "demo"), "--no-install"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    server = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while not (answers(f"{server}/accounts/login/") and list((var / "workers").glob("*"))):
            assert script.poll() is None, f"scripts/demo ended ({script.returncode}):\n{log_path.read_text()[-4000:]}"
            assert time.monotonic() - started < 240, f"the demo did not come up:\n{log_path.read_text()[-4000:]}"
            time.sleep(0.5)
        yield server, var, log_path, time.monotonic() - started
    finally:
        for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):  # Ctrl-C first: the script stops its worker
            with contextlib.suppress(ProcessLookupError):
                os.killpg(script.pid, stop)
            try:
                script.wait(timeout=30)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(script.pid, signal.SIGKILL)  # whatever the script left behind


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def watch(page, selector: str, timeout: float) -> list[str]:
    """The distinct texts of ``selector`` until it reads succeeded or failed; the page must not reload
    meanwhile (live.js swaps the parts in; ``window.walk`` is set once per page load)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not seen or not re.search(r"\b(succeeded|failed|cancelled)\b", seen[-1]):
        assert time.monotonic() < deadline, f"still {seen[-1:]} after {timeout:.0f} s"
        text = " ".join(page.inner_text(selector).split())
        if not seen or text != seen[-1]:
            seen.append(text)
        page.wait_for_timeout(300)
    assert page.evaluate("window.walk") == "not reloaded"
    return seen


def test_the_demo_trains_and_evaluates_the_minilm_guard_from_the_pages(demo, browser):
    server, var, log_path, start_seconds = demo
    timings = {"scripts/demo --no-install until the page and the worker answer": start_seconds}
    log = log_path.read_text()
    assert "admin / aegis-demo-admin" in log and "Job worker running" in log
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # Sign in as the demo's admin and open the demo project's training page.
    began = time.monotonic()
    page.goto(f"{server}/accounts/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "aegis-demo-admin")
    page.press("#id_password", "Enter")
    page.wait_for_load_state()
    page.click("tr:has-text('Aegis demo') >> text=Training")
    assert page.locator("#job-notice").inner_text() == ""  # the worker is up: no notice
    train = page.locator("form.train").first
    assert "train rows" in train.inner_text()  # the export load_demo made
    train.locator("select[name=kind]").select_option("minilm")
    train.locator("input[name=config]").fill(TRAINING)
    shot(page, "1-training-page")
    pressed = time.monotonic()
    train.locator("button[type=submit]").click()
    page.wait_for_load_state()
    timings["Train pressed until the page is back"] = time.monotonic() - pressed
    page.evaluate("window.walk = 'not reloaded'")
    first = " ".join(page.inner_text("#runs tbody tr").split())
    assert re.search(r"\b(pending|running)\b", first), first  # the request did not wait for the job
    states = watch(page, "#runs tbody tr", timeout=MINUTES * 60)
    timings["Train pressed until the guard is trained"] = time.monotonic() - pressed
    shot(page, "2-trained")
    steps = re.search(r"\b(\d+) / (\d+)\b", states[-1])
    assert "succeeded" in states[-1] and steps and steps.group(1) == steps.group(2), states
    timings["training steps"] = int(steps.group(2))
    assert any("running" in state for state in states), states  # progress showed while it ran
    guard = re.search(r"demo-minilm-run\d+", states[-1]).group(0)
    timings["sign-in to a trained guard"] = time.monotonic() - began

    # Evaluate it on a shipped benchmark and the project's test split.
    began = time.monotonic()
    page.click("#runs >> text=Evaluate")
    page.locator("label", has_text=guard).locator("input[name=guard]").check()
    page.check("input[name=benchmark][value=simple_safety_tests]")
    page.locator("input[name=benchmark][value^='export_prompt:']").first.check()
    if LIMIT:
        page.fill("input[name=limit]", str(LIMIT))
    page.fill("input[name=bootstrap]", "100")
    shot(page, "3-evaluation-page")
    pressed = time.monotonic()
    page.click("text=Start the evaluation")
    page.wait_for_load_state()
    timings["Start pressed until the page is back"] = time.monotonic() - pressed
    assert re.fullmatch(rf"{server}/evaluation/\d+/", page.url)
    page.evaluate("window.walk = 'not reloaded'")
    states = watch(page, "#run p:has-text('Status:')", timeout=MINUTES * 36)
    timings["Start pressed until the figures are there"] = time.monotonic() - pressed
    timings["evaluation (page opened to figures)"] = time.monotonic() - began
    assert states[-1].startswith("Status: succeeded"), states
    items = re.search(r"(\d+) / (\d+) items", states[-1])
    assert items and items.group(1) == items.group(2) and (not LIMIT or int(items.group(2)) == 2 * LIMIT), states
    timings["evaluation items"] = int(items.group(2))
    page.wait_for_function("[...document.images].every((image) => image.complete && image.naturalWidth > 0)")
    shot(page, "4-evaluated")
    cells = page.locator("#run table.grid").last.locator("tbody tr")
    assert cells.count() == 2
    for row in cells.all_inner_texts():
        items = str(LIMIT) if LIMIT else r"\d+"
        assert row.startswith(guard) and re.search(rf"\t{items}\t\d\.\d{{3}}\t", row), row  # items and F1 per cell
    assert page.locator("#run .plots img").count() >= 2
    assert not errors, errors

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "timings.json").write_text(
        json.dumps({step: round(seconds, 1) for step, seconds in timings.items()}, indent=2) + "\n", encoding="utf-8"
    )
    print(json.dumps(timings, indent=2))
