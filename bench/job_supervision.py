"""Kills a real Celery worker at random moments during a big jury job and measures recovery.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/job_supervision.py \
        [--samples 35000] [--kills 5] [--latency-ms 20] [--concurrency 32] [--seed 1]

Needs PostgreSQL (the database is created if missing, then migrated and filled) and the
``redis-server`` binary: the benchmark starts its own Redis on a free port, a job worker (prefork,
one pool process), celery beat with the supervisor, and a stand-in OpenAI-compatible juror server
(the jury's stand-in, answering after a fixed latency). It imports the samples, starts one jury job
and, ``--kills`` times, waits a random 2-10 s and SIGKILLs either the worker's pool process or the
whole worker (then starts a new one), the first once the job has stored answers. Prints: jobs
finished, verdicts stored against those expected, verdicts duplicated (must be 0), final labels
duplicated, and the time from each kill to the job running again (p50/p95): a new process holding it.
"""

import argparse
import json
import os
import random
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

from bench.jury_throughput import SERVER, free_port  # noqa: E402

SUPERVISION = {
    "AEGIS_JOB_HEARTBEAT_SECONDS": "1",
    "AEGIS_JOB_STALE_SECONDS": "5",
    "AEGIS_SUPERVISE_SECONDS": "2",
    "AEGIS_JOB_DISPATCH_WINDOW": "10",
}


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"nothing answers on port {port}")


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=35_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    database = os.environ.get("DATABASE_URL", "")
    if not database.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (it is created if missing)")
    ensure_database(database)
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="aegis-supervision-"))
    redis_port, juror_port = free_port(), free_port()
    env = {
        **os.environ, **SUPERVISION, "AEGIS_JOB_MAX_ATTEMPTS": str(args.kills + 5), "DB_CONN_MAX_AGE": "0",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "MEDIA_ROOT": str(tmp / "media"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }  # fmt: skip
    os.environ.update(env)
    processes: list[subprocess.Popen] = []

    def start(command: list[str], **options) -> subprocess.Popen:
        process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, **options)
        processes.append(process)
        return process

    def celery(*arguments: str) -> subprocess.Popen:
        return start([sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "error", *arguments])

    def job_worker() -> subprocess.Popen:
        return celery("-Q", "default,gpu", "--pool", "prefork", "--concurrency", "1", "-n", "jobs@%h")

    try:
        redis = ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"]
        start(redis, stdout=subprocess.DEVNULL)
        start([sys.executable, "-c", SERVER, str(juror_port), str(args.latency_ms / 1000)])
        wait_port(redis_port)
        wait_port(juror_port)
        import django

        django.setup()
        import psutil
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db.models import Count

        from annotation.models import FinalLabel, Project
        from annotation.services import create_project, import_samples
        from core.jobs import start_job
        from jury.models import Juror, JuryJob, JuryVerdict
        from jury.services import start_jury_job

        call_command("migrate", verbosity=0)
        slug = f"supervision-{int(time.time())}"
        path = tmp / "samples.jsonl"
        with path.open("w", encoding="utf-8") as stream:
            for i in range(args.samples):
                stream.write(json.dumps({"prompt": f"question {i}?", "response": f"answer {i} " * 20}) + "\n")
        project = create_project(name=slug, slug=slug)
        started = time.perf_counter()
        import_samples(project, path, adapter="generic")
        print(f"{args.samples} samples imported in {time.perf_counter() - started:.1f} s")
        Juror.objects.create(
            project=project, name="j", model="j", base_url=f"http://127.0.0.1:{juror_port}/v1",
            concurrency=args.concurrency,
        )  # fmt: skip
        boss = get_user_model().objects.get_or_create(username="bench-boss", defaults={"is_staff": True})[0]
        celery("--beat", "-s", str(tmp / "beat-schedule"), "-Q", "supervise", "--pool", "solo", "-n", "sup@%h")
        worker = job_worker()
        job = start_jury_job(project, by=boss)
        start_job(job)
        started = time.perf_counter()
        while not JuryJob.objects.filter(pk=job.pk, status="running", done__gt=0).exists():
            time.sleep(0.1)
        resumes: list[float] = []
        for kill in range(args.kills):
            time.sleep(rng.uniform(2, 10))
            state = JuryJob.objects.get(pk=job.pk)
            if state.finished:
                print(f"the job finished before kill {kill + 1}; use more samples or fewer kills")
                break
            holder = state.worker
            whole = rng.random() < 0.5
            if whole:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
                killed_at = time.perf_counter()
                worker = job_worker()
            else:
                children = psutil.Process(worker.pid).children()
                for child in children:
                    child.send_signal(signal.SIGKILL)
                killed_at = time.perf_counter()
            while True:
                state = JuryJob.objects.get(pk=job.pk)
                if state.finished or (state.status == "running" and state.worker and state.worker != holder):
                    break
                time.sleep(0.05)
            resumes.append(time.perf_counter() - killed_at)
            print(
                f"kill {kill + 1}: {'whole worker' if whole else 'pool process'} at {state.done}/{state.total}, "
                f"running again after {resumes[-1]:.1f} s"
            )
        while not (state := JuryJob.objects.get(pk=job.pk)).finished:
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        verdicts = JuryVerdict.objects.filter(sample__project=project)
        duplicated = (
            verdicts.values("sample", "juror", "part").annotate(n=Count("pk")).filter(n__gt=1).count()
        )
        finals = FinalLabel.objects.filter(sample__project=project)
        final_duplicates = finals.values("sample").annotate(n=Count("pk")).filter(n__gt=1).count()
        print(f"jobs finished: {int(state.status == 'succeeded')}/1 ({state.status}, {state.done}/{state.total}, "
              f"{state.attempts} attempts, {seconds:.0f} s)")  # fmt: skip
        print(f"verdicts stored: {verdicts.count()} of {args.samples} expected; duplicated: {duplicated}")
        print(f"final labels duplicated: {final_duplicates}")
        if resumes:
            print(
                f"kill -> running again: p50 {statistics.median(resumes):.1f} s, p95 {percentile(resumes, 0.95):.1f} s "
                f"over {len(resumes)} kills (heartbeat {SUPERVISION['AEGIS_JOB_HEARTBEAT_SECONDS']} s, stale after "
                f"{SUPERVISION['AEGIS_JOB_STALE_SECONDS']} s, "
                f"supervision every {SUPERVISION['AEGIS_SUPERVISE_SECONDS']} s)"
            )
        print(f"load: {Path('/proc/loadavg').read_text().strip()}")
        Project.objects.filter(pk=project.pk).delete()
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()


if __name__ == "__main__":
    main()
