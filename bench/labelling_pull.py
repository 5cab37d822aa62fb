"""What one labelling step costs in the database on a long queue, without HTTP: the pull (next item
and the page's view of it: content warnings, progress with the remaining count, taxonomy), the
submit, and the "My labels" list, on PostgreSQL.

    .venv/bin/python bench/labelling_pull.py [--samples 200000] [--steps 300] [--database URL]

Makes a scratch database (default ``aegis_pull`` beside AEGIS_BENCH_POSTGRES), imports generated
unlabelled dialogues, queues them all (k = 3) and lets three annotators take turns; prints
p50/p95/max in milliseconds per step.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
POSTGRES = os.environ.get("AEGIS_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")


def scratch_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def figures(name: str, seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"{name:<28} p50 {statistics.median(ms):7.1f}  p95 {p95:7.1f}  max {ms[-1]:7.1f} ms  (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--database", default=POSTGRES.rsplit("/", 1)[0] + "/aegis_pull")
    options = parser.parse_args()
    scratch_database(options.database)
    os.environ.update(DATABASE_URL=options.database, DJANGO_SETTINGS_MODULE="config.settings")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from common import generate_unlabelled
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from annotation.models import Membership
    from annotation.selectors import annotator_progress, revisable_assignments, workbench_view
    from annotation.services import create_assignment_batch, create_project, import_samples
    from annotation.services.work import next_assignment, submit_annotation

    call_command("migrate", verbosity=0)
    users = get_user_model()
    boss = users.objects.create_user("boss", is_staff=True)
    project = create_project(name="Pull", slug="pull")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.jsonl"
        generate_unlabelled(path, options.samples)
        import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="pull")
    print(f"{options.samples} samples imported and queued in {time.perf_counter() - started:.0f} s")
    people = []
    for i in range(3):
        person = users.objects.create_user(f"annotator{i}")
        people.append((person, Membership.objects.create(project=project, user=person, role="annotator")))
    timings: dict[str, list[float]] = {"pull (next + page view)": [], "  of which progress": [], "submit": []}
    for step in range(options.steps):
        person, membership = people[step % 3]
        start = time.perf_counter()
        view = workbench_view(next_assignment(person, project), membership)
        timings["pull (next + page view)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        annotator_progress(person.pk, project, membership)
        timings["  of which progress"].append(time.perf_counter() - start)
        start = time.perf_counter()
        has_response = view["sample"]["has_response"]
        submit_annotation(
            view["assignment"]["id"], person, prompt_label="safe", response_label="safe" if has_response else None
        )
        timings["submit"].append(time.perf_counter() - start)
    mine = []
    for _ in range(50):
        start = time.perf_counter()
        revisable_assignments(people[0][0].pk, project)
        mine.append(time.perf_counter() - start)
    timings["my labels (20 newest)"] = mine
    for name, seconds in timings.items():
        print(figures(name, seconds))
    print("load average:", open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
