"""Fixtures of the guards' tests: stand-ins for an OpenAI-compatible server on 127.0.0.1 (chat
completions, and text completions for WildGuard's format), used by the jury's, evaluation's and
moderation's tests too."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Hold:
    """Holds a model's requests past the first ``free`` until ``release()``: a server that is slow
    for as long as a test needs, with no clock to race."""

    def __init__(self, free: int = 0):
        self.free, self.seen = free, 0
        self._lock, self._released = threading.Lock(), threading.Event()

    def wait(self) -> None:
        with self._lock:
            self.seen += 1
            held = self.seen > self.free
        if held:
            self._released.wait(timeout=120)

    def release(self) -> None:
        self._released.set()


class FakeVLLM(BaseHTTPRequestHandler):
    """Speaks /v1/chat/completions; ``server.script`` says how to misbehave: ``holds`` (model:
    Hold) and ``barrier`` (every answered request waits there for the others) time nothing."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        script = self.server.script
        self.server.requests.append(body)
        mode = script.get("mode", "ok")
        if mode == "fail_then_ok" and script.setdefault("failed", 0) < script["fails"]:
            script["failed"] += 1
            return self._send(script.get("status", 500), b'{"error": "overloaded"}')
        if mode == "bad_request" or body["messages"][0]["content"] == "refuse me":
            return self._send(400, b'{"error": "bad model"}')
        if mode == "slow":
            time.sleep(script["delay"])
        if "barrier" in script:
            try:
                script["barrier"].wait()
            except threading.BrokenBarrierError:
                return self._send(500, b'{"error": "the other requests did not come at the same time"}')
        if body["model"] in script.get("holds", {}):
            script["holds"][body["model"]].wait()
        time.sleep(script.get("delays", {}).get(body["model"], 0))
        if mode == "malformed":
            return self._send(200, script.get("body", b"<html>not json</html>"))
        default = '{"User Safety": "unsafe", "Safety Categories": "Violence"}'
        answer = script.get("answers", {}).get(body["model"], script.get("answer", default))
        payload = {"choices": [{"message": {"role": "assistant", "content": answer}}]}
        self._send(200, json.dumps(payload).encode())

    def _send(self, status, data):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped waiting (a timeout)
            pass


@pytest.fixture
def server():
    ThreadingHTTPServer.request_queue_size = 128  # jurors are asked at once, each with several requests
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeVLLM)
    httpd.script, httpd.requests = {}, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    for hold in httpd.script.get("holds", {}).values():
        hold.release()
    httpd.shutdown()
    httpd.server_close()


class GuardServer(FakeVLLM):
    """FakeVLLM for chat completions; ``/v1/completions`` (WildGuard's text format) answers
    ``script["completion"]``. Every request is kept with its path."""

    def do_POST(self):
        self.server.paths.append(self.path)
        if self.path.endswith("/chat/completions"):
            return super().do_POST()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        text = self.server.script.get("completion", "Harmful request: yes\nResponse refusal: no\nHarmful response: no")
        self._send(200, json.dumps({"choices": [{"text": text}]}).encode())


@pytest.fixture
def guard_server():
    ThreadingHTTPServer.request_queue_size = 128
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), GuardServer)
    httpd.script, httpd.requests, httpd.paths = {}, [], []
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address
    httpd.url = f"http://{host}:{port}/v1"
    yield httpd
    for hold in httpd.script.get("holds", {}).values():
        hold.release()
    httpd.shutdown()
    httpd.server_close()
