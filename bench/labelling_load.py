"""Annotators under load: gunicorn + PostgreSQL (or the embedded SQLite), simulated annotators on 127.0.0.1.

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python bench/labelling_load.py [--annotators 12 100] [--seconds 60] [--think 1.0]
        [--database postgres|sqlite] [--workers N] [--threads T]

Sets up a scratch database (``AEGIS_BENCH_SCRATCH_DB``, default aegis_load, on
AEGIS_BENCH_POSTGRES, or a fresh SQLite file with the
embedded settings: WAL, BEGIN IMMEDIATE, 30 s busy timeout), 35,000 unlabelled samples queued
with k = 3, and one token per annotator; starts gunicorn (sync workers, or gthread with
``--threads``); each simulated annotator pulls the next item and submits a label, thinking
``--think`` seconds between actions. Then a saturation run with no think time. Prints
p50/p95/p99/max per action, labelled items per second, the SQL statements of one next and one
submit (counted in process on the same database), the gunicorn processes' CPU per request
(SQLite's work included; PostgreSQL's own backends not), the load generator's own CPU, and
checks that every accepted submission is stored exactly once and that no sample has more than
k annotations.
"""

import argparse
import asyncio
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
POSTGRES = os.environ.get("AEGIS_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
SCRATCH = os.environ.get("AEGIS_BENCH_SCRATCH_DB", "aegis_load")  # dropped and made again
DATABASE = POSTGRES.rsplit("/", 1)[0] + "/" + SCRATCH
SAMPLES = 35_000
TARGET_P95_MS = 50
TARGET_SATURATION = 100


def scratch_database() -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{SCRATCH}"')


def statements_per_request(project: int, token: str, rounds: int = 5) -> dict[str, int]:
    """Most SQL statements of one next and one submit, run in process on the bench's database."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    client = APIClient(SERVER_NAME="127.0.0.1")
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    most = {"next": 0, "submit": 0}
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as queries:
            view = client.post(f"/api/projects/{project}/next/").json()
        most["next"] = max(most["next"], len(queries))
        label = {"prompt_label": "unsafe", "categories": ["S1"]}
        if view["sample"]["has_response"]:
            label["response_label"] = "safe"
        with CaptureQueriesContext(connection) as queries:
            response = client.post(f"/api/assignments/{view['assignment']['id']}/submit/", label, format="json")
        assert response.status_code == 200, response.content
        most["submit"] = max(most["submit"], len(queries))
    connection.close()
    return most


def server_cpu(server: subprocess.Popen) -> float:
    """CPU seconds used so far by gunicorn's master and workers."""
    import psutil

    process = psutil.Process(server.pid)
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def prepare(people: int) -> tuple[int, list[str]]:
    """Migrates, imports and queues the samples, makes annotators; returns (project id, tokens)."""
    import django

    django.setup()
    from common import generate_unlabelled
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.models import Membership
    from annotation.services import create_assignment_batch, create_project, import_samples

    call_command("migrate", verbosity=0)
    users = get_user_model()
    boss = users.objects.create_user("boss", is_staff=True)
    project = create_project(name="Load", slug="load")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.jsonl"
        generate_unlabelled(path, SAMPLES)
        import_samples(project, path, adapter="generic")
    create_assignment_batch(project, by=boss, name="load")
    tokens = []
    for i in range(people):
        user = users.objects.create_user(f"annotator{i:03d}")
        Membership.objects.create(project=project, user=user, role="annotator")
        tokens.append(Token.objects.create(user=user).key)
    return project.pk, tokens


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(port: int, workers: int, threads: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "load-test-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DB_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--preload", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers)]
    if threads > 1:
        command += ["--worker-class", "gthread", "--threads", str(threads)]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


async def annotator(session, base: str, token: str, project: int, until: float, think: float, stats: dict) -> None:
    headers = {"Authorization": f"Token {token}"}
    rng = random.Random(token)
    await asyncio.sleep(rng.uniform(0, 2 * think))  # people do not start in step
    while time.monotonic() < until:
        start = time.perf_counter()
        async with session.post(f"{base}/api/projects/{project}/next/", headers=headers) as response:
            view = await response.json()
        stats["next"].append(time.perf_counter() - start)
        if response.status != 200 or "no_work" in view:
            stats["errors"] += response.status != 200
            await asyncio.sleep(think or 0.1)
            continue
        await asyncio.sleep(think)
        unsafe = rng.random() < 0.4
        label = {"prompt_label": "unsafe" if unsafe else "safe", "categories": ["S1"] if unsafe else []}
        if view["sample"]["has_response"]:
            label["response_label"] = "safe"
        start = time.perf_counter()
        async with session.post(
            f"{base}/api/assignments/{view['assignment']['id']}/submit/", json=label, headers=headers
        ) as response:
            await response.read()
        stats["submit"].append(time.perf_counter() - start)
        if response.status == 200:
            stats["accepted"] += 1
        else:
            stats["errors"] += 1
        await asyncio.sleep(think)


async def run_load(base: str, project: int, tokens: list[str], seconds: float, think: float) -> dict:
    import aiohttp

    stats: dict = {"next": [], "submit": [], "accepted": 0, "errors": 0}
    until = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(annotator(session, base, t, project, until, think, stats) for t in tokens))
    return stats


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100)
    return (
        f"p50 {cuts[49] * 1000:6.1f}  p95 {cuts[94] * 1000:6.1f}  p99 {cuts[98] * 1000:6.1f}"
        f"  max {max(values) * 1000:7.1f} ms"
    )


def report(name: str, stats: dict, seconds: float, cpu: float, p95_target: bool, served: float) -> None:
    print(f"\n{name}")
    for action in ("next", "submit"):
        values = stats[action]
        line = f"  {action:6} {len(values):6} requests  {percentiles(values)}"
        if p95_target and len(values) > 1:
            p95 = statistics.quantiles(values, n=100)[94] * 1000
            line += f"   target p95 ≤ {TARGET_P95_MS} ms: {'met' if p95 <= TARGET_P95_MS else 'MISSED'}"
        print(line)
    print(f"  labelled items/s {stats['accepted'] / seconds:7.1f}   errors {stats['errors']}")
    requests = len(stats["next"]) + len(stats["submit"])
    if requests:
        print(
            f"  server CPU per request {1000 * served / requests:5.1f} ms"
            f" ({1000 * served / max(1, stats['accepted']):5.1f} ms per labelled item)"
        )
    print(f"  load generator CPU {100 * cpu / seconds:5.1f}% of one core")


def check_integrity(accepted: int) -> None:
    from django.db.models import Count

    from annotation.models import Annotation, Assignment

    stored = Annotation.objects.count()
    most = Annotation.objects.values("sample").annotate(n=Count("pk")).order_by("-n").first()
    submitted = Assignment.objects.filter(status="submitted").count()
    duplicates = Annotation.objects.values("sample", "annotator").annotate(n=Count("pk")).filter(n__gt=1).count()
    ok = stored == accepted == submitted and duplicates == 0 and (most is None or most["n"] <= 3)
    print(
        f"\nintegrity: {accepted} accepted submissions, {stored} annotations stored, {submitted} assignments "
        f"submitted, {duplicates} duplicates, most annotations on one sample: {most['n'] if most else 0} "
        f"(k = 3) -> {'OK' if ok else 'FAILED'}"
    )
    if not ok:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, nargs="+", default=[12, 100])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--saturation-clients", type=int, default=16)
    parser.add_argument("--saturation-seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count() + 1)
    parser.add_argument("--threads", type=int, default=1, help="> 1: gthread workers with this many threads")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    args = parser.parse_args()
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings"})
    os.environ.pop("REDIS_URL", None)
    scratch = None
    if args.database == "postgres":
        os.environ["DATABASE_URL"] = DATABASE
        scratch_database()
    else:
        os.environ.pop("DATABASE_URL", None)
        scratch = tempfile.TemporaryDirectory()
        os.environ["AEGIS_VAR_DIR"] = scratch.name
    project, tokens = prepare(max(max(args.annotators), args.saturation_clients) + 1)
    statements = statements_per_request(project, tokens.pop())
    accepted = 5
    port = free_port()
    server = start_gunicorn(port, args.workers, args.threads)
    base = f"http://127.0.0.1:{port}"
    try:
        runs = [
            (f"{n} annotators, think {args.think} s", tokens[:n], args.seconds, args.think, True)
            for n in args.annotators
        ]
        saturation = f"saturation: {args.saturation_clients} clients, no think time"
        runs.append((saturation, tokens[: args.saturation_clients], args.saturation_seconds, 0.0, False))
        # Warm-up, not measured: every worker has served requests before the clock starts.
        warm = asyncio.run(run_load(base, project, tokens[-args.workers * 2 :], 3, 0.0))
        accepted += warm["accepted"]
        for name, people, seconds, think, p95_target in runs:
            cpu_before, served_before = resource.getrusage(resource.RUSAGE_SELF), server_cpu(server)
            stats = asyncio.run(run_load(base, project, people, seconds, think))
            cpu_after, served = resource.getrusage(resource.RUSAGE_SELF), server_cpu(server) - served_before
            cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
            report(name, stats, seconds, cpu, p95_target, served)
            accepted += stats["accepted"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    kind = f"gthread workers × {args.threads} threads" if args.threads > 1 else "sync workers"
    database = "PostgreSQL" if args.database == "postgres" else "SQLite (WAL, BEGIN IMMEDIATE)"
    print(f"\nserver: gunicorn, {args.workers} {kind}, {database}; {SAMPLES} samples queued, k = 3")
    print(
        f"SQL statements per request (in process, BEGIN/COMMIT included): next {statements['next']}, "
        f"submit {statements['submit']}"
    )
    print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    check_integrity(accepted)
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    main()
