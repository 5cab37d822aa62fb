"""Aegis Studio beside doccano and Label Studio: the same phases, data and driver, one tool at a time.

    .venv/bin/python bench/side_by_side.py [--steps aegis_pg:r1 dc:r1 ls:r1] [--anchors ../shared/bench-anchors]

Runs ../shared/bench-anchors (README there: 35,000 dialogues imported through each tool's API,
5,000 labelled by 12 annotator threads with no think time, exports of 35k) with this checkout as
the project, in its documented production layout (docker-compose.yml: gunicorn --preload with
WEB_WORKERS=2 gthread workers of WEB_THREADS=6 threads and keep-alive, a Celery worker with
WORKER_CONCURRENCY=2, PostgreSQL, Redis).
The peers are installed into /tmp/anchors on first use as that README says (PyPI, ~3 min).
Prints the anchors' side-by-side table (its ratios are this run's) and issue 18's targets beside
what this run measured. Takes about 20 minutes on 2 cores; run it on an otherwise idle machine.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path("/tmp/aegis-bench")  # run_sequence.sh and start_aegis.sh use these paths
PEERS = Path("/tmp/anchors")
WEB_WORKERS, WEB_THREADS = 2, 6  # docker-compose.yml's defaults (WEB_WORKERS, WEB_THREADS)
PEER_INSTALL = {
    "ls-venv": [["label-studio", "psutil", "requests"]],
    "dc-venv": [["doccano", "psutil", "requests"], ["marshmallow<4", "numpy<2"]],
}


def install_peers() -> None:
    for venv, installs in PEER_INSTALL.items():
        python = PEERS / venv / "bin" / "python"
        if python.exists():
            continue
        print(f"installing {venv} (first run only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS / venv)], check=True)
        for packages in installs:
            subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)


def gunicorn_layout(web_workers: int, web_threads: int) -> str:
    """docker-compose.yml's web command line options; ``web_threads`` 0: sync workers."""
    layout = f"--preload --workers {web_workers}"
    if web_threads:
        layout += f" --worker-class gthread --threads {web_threads} --keep-alive 5"
    return layout


NEXT_BLOCK = ("        def annotate(sess, i, out):\n", "            view = r.json()\n")
SUBMIT_CALL = 'r = sess.post(f"{base}/api/assignments/{aid}/submit/", json=label, timeout=120)\n'
ANNOTATE_END = '            return True\n\n        rss.phase("annotate")'


def one_request_loop(bench: str) -> str:
    """aegis_bench.py's labelling loop with one request per item: each submission asks for the
    next item (``?then=next``), and only a thread's first item (or one after a failed submission)
    is pulled with ``/next/``. Everything else (labels, checks, figures) is the harness's own."""
    start, end = bench.find(NEXT_BLOCK[0]), bench.find(NEXT_BLOCK[1])
    if min(start, end) < 0 or bench.count(SUBMIT_CALL) != 1 or bench.count(ANNOTATE_END) != 1:
        raise SystemExit("aegis_bench.py's labelling loop changed; update bench/side_by_side.py")
    pull = bench[start + len(NEXT_BLOCK[0]) : end + len(NEXT_BLOCK[1])]
    pull = "".join("    " + line if line.strip() else line for line in pull.splitlines(keepends=True))
    loop = (
        NEXT_BLOCK[0]
        + '            view, sess.following = getattr(sess, "following", None), None  # from the last submission\n'
        + "            if view is None:\n"
        + pull
    )
    bench = bench[:start] + loop + bench[end + len(NEXT_BLOCK[1]) :]
    bench = bench.replace(SUBMIT_CALL, SUBMIT_CALL.replace("/submit/", "/submit/?then=next"))
    kept = 'sess.following = r.json()["next"]\n            return True'
    return bench.replace(ANNOTATE_END, ANNOTATE_END.replace("return True", kept))


def prepare_harness(
    anchors: Path, web_workers: int, web_threads: int, worker_concurrency: int, one_request: bool
) -> Path:
    """A writable copy of the harness whose start_aegis.sh uses this project's production layout."""
    harness = WORK / "bench-anchors"
    shutil.rmtree(harness, ignore_errors=True)
    shutil.copytree(anchors, harness)
    start = harness / "start_aegis.sh"
    text = start.read_text()
    for old, new in (
        (
            'gunicorn config.wsgi --bind "127.0.0.1:$PORT" --workers 4',
            f'gunicorn config.wsgi --bind "127.0.0.1:$PORT" {gunicorn_layout(web_workers, web_threads)}',
        ),
        ("worker -Q default --concurrency 4", f"worker -Q default --concurrency {worker_concurrency}"),
    ):
        if old not in text:
            raise SystemExit(f"{start}: expected {old!r}; the harness changed, update bench/side_by_side.py")
        text = text.replace(old, new)
    start.write_text(text)
    if one_request:
        bench = harness / "aegis_bench.py"
        bench.write_text(one_request_loop(bench.read_text()))
    loop = "submit?then=next" if one_request else "next + submit"
    summarize = harness / "summarize.py"
    summarize.write_text(
        summarize.read_text().replace(
            "Aegis PG (gunicorn 4 + Celery)",
            f"Aegis PG (gunicorn {web_workers}×{web_threads or 1} + Celery {worker_concurrency}; {loop})",
        )
    )
    bench_python = WORK / "bench-venv" / "bin" / "python"
    if not bench_python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(WORK / "bench-venv")], check=True)
        subprocess.run([str(bench_python), "-m", "pip", "install", "-q", "psutil", "requests"], check=True)
    return harness


def postgres_cpu_seconds(proc: Path = Path("/proc")) -> float:
    """CPU used so far by this machine's PostgreSQL: its live processes, plus the backends that
    have exited (the postmaster's reaped children's time)."""
    ticks, parents = 0, {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process exited meanwhile
            continue
        if text[text.index("(") + 1 : text.rindex(")")] != "postgres":
            continue
        fields = text[text.rindex(")") + 2 :].split()
        pid, parent = int(stat.parent.name), int(fields[1])
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        ticks += utime + stime
        parents[pid] = (parent, cutime + cstime)
    # The postmaster: the one PostgreSQL process whose parent is not one.
    ticks += sum(children for parent, children in parents.values() if parent not in parents)
    return ticks / os.sysconf("SC_CLK_TCK")


class LabellingPhasePostgres(threading.Thread):
    """PostgreSQL's CPU during the project's labelling phase, all of its processes: the harness
    sums only the bench database's live backends at phase boundaries, and misses those replaced
    during the phase (``DB_CONN_MAX_AGE``). The phase is read from the step's log: it starts once
    the batch is queued ("listed …") and ends when its figures are printed ("annotate: …")."""

    def __init__(self, log: Path):
        super().__init__(daemon=True)
        self.log, self.seconds, self.done = log, None, threading.Event()

    def run(self) -> None:
        start = None
        while not self.done.wait(0.2):
            text = self.log.read_text() if self.log.exists() else ""
            if start is None and "\nlisted " in text:
                start = postgres_cpu_seconds()
            elif start is not None and "\nannotate: " in text:
                self.seconds = postgres_cpu_seconds() - start
                return


def latest(results: Path, pattern: str) -> dict | None:
    files = sorted(glob.glob(str(results / pattern)), key=os.path.getmtime)
    return json.load(open(files[-1])) if files else None


def targets(results: Path, postgres_seconds: float | None) -> list[str]:
    """Issue 18's 'done when' figures, from this run's JSON and PostgreSQL's CPU in the labelling."""
    ours, doccano, label_studio = (
        latest(results, "aegis_pg_*.json"),
        latest(results, "doccano_*.json"),
        latest(results, "labelstudio_*.json"),
    )
    if not ours:
        return ["no run of the project found"]
    lines = []
    annotate = ours.get("annotate") or {}
    cpu = ours["rss_peaks_mb"]["_cpu_by_phase"]["annotate"]
    server_ms = 1000 * sum(v for k, v in cpu.items() if k.endswith("_cpu_s") and not k.startswith("client"))
    items = max(annotate.get("items_ok", 0), 1)
    server_ms /= items
    verify = ours.get("verify_db") or {}
    lost_dup = verify.get("lost", 0) + verify.get("dup_sample_annotator", 0) + verify.get("samples_gt1", 0)
    if postgres_seconds is None:
        lines.append(f"server CPU per labelled item {server_ms:.1f} ms, the harness's count (target ≤ 10)")
    else:
        web_ms = server_ms - 1000 * cpu.get("pg_backends_cpu_s", 0) / items
        postgres_ms = 1000 * postgres_seconds / items
        lines.append(
            f"server CPU per labelled item {web_ms + postgres_ms:.1f} ms = {web_ms:.1f} web and workers"
            f" + {postgres_ms:.1f} PostgreSQL, all its processes (target ≤ 10)"
        )
    lines.append(f"lost or duplicated labels {lost_dup} (target 0)")
    if doccano:
        dc = doccano.get("annotate") or {}
        rate = dc.get("samples_per_s") or dc.get("items_per_s")
        p95 = (dc.get("sample_latency") or {}).get("p95_ms")
        lines.append(
            f"labelled items/s {annotate['items_per_s']} = {annotate['items_per_s'] / rate:.2f}× "
            f"doccano's {rate} (target ≥ 5×)"
        )
        lines.append(
            f"per-item p95 {annotate['item_latency']['p95_ms']:.0f} ms = "
            f"{annotate['item_latency']['p95_ms'] / p95:.2f} of doccano's {p95:.0f} ms (target ≤ 0.2)"
        )
    peers = [p for p in (doccano, label_studio) if p and p.get("import")]
    if peers:
        fastest = min(p["import"]["wall_seconds_until_queryable"] for p in peers)
        wall = ours["import"]["wall_seconds_until_queryable"]
        lines.append(
            f"import 35k {wall} s, {fastest / wall:.2f}× faster than the faster peer's {fastest} s (target ≥ 3×)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", type=Path, default=ROOT.parent / "shared" / "bench-anchors")
    parser.add_argument("--steps", nargs="+", default=["aegis_pg:r1", "dc:r1", "ls:r1"])
    parser.add_argument("--web-workers", type=int, default=WEB_WORKERS)
    parser.add_argument("--web-threads", type=int, default=WEB_THREADS, help="0: sync workers")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--loop",
        choices=["one-request", "two-requests"],
        default="one-request",
        help="the project's labelling loop: submit?then=next (as its labelling page), or the harness's next + submit",
    )
    args = parser.parse_args()
    if not (args.anchors / "run_sequence.sh").exists():
        raise SystemExit(f"no harness at {args.anchors} (../shared/bench-anchors)")
    if not (ROOT / ".venv" / "bin" / "python").exists():
        raise SystemExit("install the project first: scripts/install test")
    install_peers()
    harness = prepare_harness(
        args.anchors, args.web_workers, args.web_threads, args.worker_concurrency, args.loop == "one-request"
    )
    results = WORK / "results"
    if results.exists():
        results.rename(WORK / f"results.{time.strftime('%Y%m%dT%H%M%S')}")
    print(f"load before: {os.getloadavg()}", flush=True)
    env = {**os.environ, "AEGIS_APP": str(ROOT)}
    ours = [step for step in args.steps if step.startswith("aegis_pg:")]
    watch = None
    if ours:
        log = WORK / "logs" / f"{ours[-1].replace(':', '_')}.log"
        log.unlink(missing_ok=True)  # an earlier run's log would mark the phase at once
        watch = LabellingPhasePostgres(log)
        watch.start()
    subprocess.run([str(harness / "run_sequence.sh"), *args.steps], env=env, check=True)
    if watch:
        watch.done.set()
    print(f"load after: {os.getloadavg()}")
    for log in sorted((WORK / "logs").glob("*.log")):
        if any(log.name.startswith(step.replace(":", "_")) for step in args.steps):
            first, last = log.read_text().splitlines()[:1], log.read_text().splitlines()[-1:]
            print(f"{log.name}: {first[0] if first else ''} … {last[0] if last else ''}")
    subprocess.run(
        [str(WORK / "bench-venv" / "bin" / "python"), str(harness / "summarize.py"), str(results)], check=True
    )
    print("\nIssue 18 targets, this run:")
    for line in targets(results, watch.seconds if watch else None):
        print("  " + line)


if __name__ == "__main__":
    main()
