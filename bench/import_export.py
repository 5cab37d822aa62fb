"""Import and export throughput and peak memory for generated Aegis 2.0-shaped samples.

    .venv/bin/python bench/import_export.py --sizes 35000 1000000 --db sqlite postgres [--profiles default release]

Each phase runs in its own process so its peak RSS is its own. PostgreSQL uses a scratch
database (AEGIS_BENCH_DB_NAME, default aegis_bench) on AEGIS_BENCH_POSTGRES (default
postgres://postgres@127.0.0.1:5432/postgres).
Prints one line per (database, size, phase) and the targets from the foundation issue.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import generate

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("AEGIS_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
SCRATCH_DB = os.environ.get("AEGIS_BENCH_DB_NAME", "aegis_bench")
TARGETS = {("postgres", 35000, "import"): 5.0, ("postgres", 35000, "export"): 3.0}
RSS_TARGET_MB = {("postgres", 1000000, "export"): 300}
# The peers' figures at 35k through their APIs (issue 18, ../shared/bench-anchors, round 2), printed beside ours.
ANCHORS = {
    ("import", 35000): "doccano 17.1 s, Label Studio 15.0 s",
    ("export", 35000): "doccano 9.6 s, Label Studio 113 s",
}


def run_phase(phase: str, database_url: str, data: Path, out: Path) -> tuple[float, float]:
    """Runs one phase in a child process; returns (seconds, peak RSS in MB) of that child."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DB_CONN_MAX_AGE": "0",
    }
    env.pop("REDIS_URL", None)
    process = subprocess.Popen([sys.executable, __file__, "--phase", phase, str(data), str(out)], cwd=ROOT, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{phase} failed")
    seconds = float((out / f"{phase}.seconds").read_text())
    return seconds, usage.ru_maxrss / 1024


def phase_main(phase: str, data: Path, out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from annotation.models import Project
    from annotation.services import create_project, export_dataset, import_samples

    if phase == "migrate":
        call_command("migrate", verbosity=0)
        create_project(name="Bench", slug="bench")
        (out / "migrate.seconds").write_text("0")
        return
    project = Project.objects.get(slug="bench")
    start = time.perf_counter()
    if phase == "import":
        batch = import_samples(project, data, adapter="aegis2")
        assert batch.created_count == batch.rows_read, batch.error
    else:  # export, or export-<profile> (release, raw)
        profile = phase.partition("-")[2]
        export_dataset(project, directory=out / phase, **({"profile": profile} if profile else {}))
    (out / f"{phase}.seconds").write_text(str(time.perf_counter() - start))


def fresh_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}"')
        connection.execute(f'CREATE DATABASE "{SCRATCH_DB}"')
    return POSTGRES.rsplit("/", 1)[0] + f"/{SCRATCH_DB}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[35000])
    parser.add_argument("--db", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument(
        "--profiles", nargs="+", default=["default"], choices=["default", "release", "raw"], help="export profiles"
    )
    args = parser.parse_args()
    print(f"{'db':9} {'samples':>9} {'phase':14} {'seconds':>8} {'rows/s':>9} {'peak MB':>8}  target")
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="aegis-bench-") as tmp:
            data = Path(tmp) / "samples.jsonl"
            generate(data, size)
            for kind in args.db:
                workdir = Path(tmp) / kind
                workdir.mkdir()
                url = fresh_database(kind, workdir)
                run_phase("migrate", url, data, workdir)
                exports = [f"export-{p}" if p != "default" else "export" for p in args.profiles]
                for phase in ("import", *exports):
                    seconds, peak = run_phase(phase, url, data, workdir)
                    target = []
                    if (kind, size, phase) in TARGETS:
                        limit = TARGETS[(kind, size, phase)]
                        target.append(
                            f"≤ {limit} s: {'met' if seconds <= limit else 'MISSED'} ({limit / seconds:.1f}x)"
                        )
                    if (kind, size, phase) in RSS_TARGET_MB:
                        limit = RSS_TARGET_MB[(kind, size, phase)]
                        target.append(f"≤ {limit} MB: {'met' if peak <= limit else 'MISSED'}")
                    if (phase, size) in ANCHORS:
                        target.append(f"anchors: {ANCHORS[(phase, size)]}")
                    figures = f"{seconds:8.2f} {size / seconds:9.0f} {peak:8.0f}"
                    print(f"{kind:9} {size:>9} {phase:14} {figures}  {'; '.join(target)}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--phase":
        phase_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
