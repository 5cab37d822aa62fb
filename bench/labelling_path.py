"""SQL queries and server CPU per request on the annotator's path, in process (no HTTP, no load generator).

    .venv/bin/python bench/labelling_path.py [--samples 2000] [--items 300]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<name> .venv/bin/python bench/labelling_path.py

Builds a scratch test database (SQLite in memory, or ``test_<name>`` on PostgreSQL), imports
unlabelled samples queued with k = 3, and has three annotators (token auth) pull and submit in
turn through the Django test client: ``--items`` each by ``next`` then ``submit``, then as many by
``submit?then=next`` (one request per item). Prints, per action, the SQL queries and the process CPU
time of one request (median and p95; the maximum of submit is the submission that completes an item
and decides its final label, one in k), and the CPU per labelled item of either loop. CPU time does
not depend on other load on the machine the way wall-clock latency does.
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
sys.path.insert(0, str(ROOT / "bench"))
TARGET_QUERIES = 6
TARGET_CPU_MS = 5.0


def setup(samples: int):
    """A project, a queue of ``samples`` items with k = 3 and three API clients; returns (project id, clients)."""
    from common import generate_unlabelled
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from annotation.services import add_member, create_assignment_batch, create_project, import_samples

    users = get_user_model()
    boss = users.objects.create_user("boss", is_staff=True)
    project = create_project(name="Path", slug="path")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.jsonl"
        generate_unlabelled(path, samples)
        import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="path")
    clients = []
    for i in range(3):
        user = users.objects.create_user(f"annotator{i}")
        add_member(project, by=boss, username=user.username, role="annotator")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        clients.append(client)
    return project.pk, clients


def label_for(n: int, view: dict) -> dict:
    label = {"prompt_label": "unsafe" if n % 3 == 0 else "safe", "categories": ["S1"] if n % 3 == 0 else []}
    if view["sample"]["has_response"]:
        label["response_label"] = "safe"
    return label


def measure(project: int, clients, items: int) -> dict[str, list[tuple[int, float]]]:
    """(queries, CPU seconds) of every request: ``items`` labelled per annotator by next and submit,
    then as many by submit?then=next (the first item of each annotator pulled apart, not counted)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    figures: dict[str, list[tuple[int, float]]] = {"next": [], "submit": [], "submit?then=next": []}

    def timed(action: str, client, path: str, body=None):
        with CaptureQueriesContext(connection) as queries:
            start = time.process_time()
            response = client.post(path, body, format="json")
            cpu = time.process_time() - start
        assert response.status_code == 200, response.content
        figures[action].append((len(queries), cpu))
        return response.json()

    for n in range(items):
        for client in clients:
            view = timed("next", client, f"/api/projects/{project}/next/")
            timed("submit", client, f"/api/assignments/{view['assignment']['id']}/submit/", label_for(n, view))
    views = [client.post(f"/api/projects/{project}/next/").json() for client in clients]
    for n in range(items):
        for i, client in enumerate(clients):
            path = f"/api/assignments/{views[i]['assignment']['id']}/submit/?then=next"
            views[i] = timed("submit?then=next", client, path, label_for(n, views[i]))["next"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--items", type=int, default=300, help="pulls per annotator (three annotators)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "labelling-path-" + "x" * 50)
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        project, clients = setup(args.samples)
        measure(project, clients, 20)  # warm-up: caches filled, code paths imported
        figures = measure(project, clients, args.items)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"{connection.vendor}, {args.samples} samples queued (k = 3), 3 annotators, {args.items} items each")
    for action, rows in figures.items():
        queries = [q for q, _ in rows]
        cpu = sorted(c * 1000 for _, c in rows)
        p95 = statistics.quantiles(cpu, n=20)[18]
        target = f" (target ≤ {TARGET_QUERIES} + 2)" if action in ("next", "submit") else ""
        print(
            f"  {action:16} SQL statements per request (BEGIN/COMMIT included) max {max(queries)},"
            f" median {statistics.median(queries):.0f}{target}"
            f"   CPU per request median {statistics.median(cpu):.1f} ms, p95 {p95:.1f} ms"
        )
    two = sum(c for _, c in figures["next"] + figures["submit"]) / len(figures["submit"])
    one = sum(c for _, c in figures["submit?then=next"]) / len(figures["submit?then=next"])
    print(
        f"  CPU per labelled item (mean): next + submit {two * 1000:.2f} ms (target ≤ {2 * TARGET_CPU_MS:.0f} ms),"
        f" submit?then=next {one * 1000:.2f} ms ({one / two:.2f} of it)"
    )
    print(f"  load average {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
