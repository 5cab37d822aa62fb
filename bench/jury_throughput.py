"""Jury throughput against an OpenAI-compatible server, and the pipeline's own overhead.

    .venv/bin/python bench/jury_throughput.py [--samples 600] [--latency-ms 50] [--concurrency 1 8 64]

The server is a stand-in started in its own process on 127.0.0.1 that answers every chat
completion with a valid NemoGuard verdict after a fixed latency (so the server's share of the
time is known exactly); point --url at a real `vllm serve` to measure one instead. For each
concurrency: samples/s through a full jury job (render, request, parse, store verdicts, decide,
write final labels) and the overhead beyond the server's time, per sample and as a share.
Target: overhead ≤ 5 %.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
latency = float(sys.argv[2])
answer = json.dumps({"choices": [{"message": {"role": "assistant", "content":
    '{"User Safety": "unsafe", "Response Safety": "unsafe", "Safety Categories": "Violence"}'}}]}).encode()
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *args): pass
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(latency)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 256
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--url", help="a real OpenAI-compatible server (…/v1) instead of the stand-in")
    parser.add_argument("--model", default="juror")
    args = parser.parse_args()
    server = None
    url = args.url
    if url is None:
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(args.latency_ms / 1000)])
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(50):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
    with tempfile.TemporaryDirectory(prefix="aegis-jury-") as tmp:
        os.environ.update(
            {"DATABASE_URL": f"sqlite:///{tmp}/jury.sqlite3", "DJANGO_SETTINGS_MODULE": "config.settings"}
        )
        os.environ.pop("REDIS_URL", None)
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from annotation.services import create_project, import_samples
        from jury.models import Juror
        from jury.services import run_jury_job, start_jury_job

        call_command("migrate", verbosity=0)
        boss = get_user_model().objects.create_user("boss", is_staff=True)
        path = Path(tmp) / "samples.jsonl"
        path.write_text(
            "".join(
                json.dumps({"prompt": f"question {i}: how do I do thing {i}?", "response": f"answer {i} " * 30}) + "\n"
                for i in range(args.samples)
            ),
            encoding="utf-8",
        )
        latency = args.latency_ms / 1000
        print(f"{args.samples} samples, 1 juror, server latency {args.latency_ms:g} ms per request")
        header = f"{'concurrency':>11} {'seconds':>8} {'samples/s':>10} {'server s':>9}"
        print(f"{header} {'overhead/sample':>16} {'overhead':>9}")
        for concurrency in args.concurrency:
            project = create_project(name=f"c{concurrency}", slug=f"c{concurrency}")
            import_samples(project, path, adapter="generic")
            Juror.objects.create(
                project=project,
                name="j",
                model=args.model,
                base_url=url,
                concurrency=concurrency,
                judges_responses=True,
            )
            job = start_jury_job(project, by=boss)
            start = time.perf_counter()
            job = run_jury_job(job)
            seconds = time.perf_counter() - start
            assert job.status == "succeeded" and job.done == args.samples, job.error
            # Requests go out in batches of 32 with `concurrency` in flight: the server's own time.
            from jury.services import JOB_BATCH

            batches = -(-args.samples // JOB_BATCH)
            waves = sum(-(-min(JOB_BATCH, args.samples - b * JOB_BATCH) // concurrency) for b in range(batches))
            server_seconds = waves * latency
            overhead = seconds - server_seconds
            print(
                f"{concurrency:>11} {seconds:8.2f} {args.samples / seconds:10.1f} {server_seconds:9.2f} "
                f"{1000 * overhead / args.samples:13.2f} ms {100 * overhead / seconds:8.1f}%"
            )
    if server:
        server.terminate()


if __name__ == "__main__":
    main()
