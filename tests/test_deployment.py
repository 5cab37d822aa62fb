"""docker-compose.yml parses with Compose itself and describes the full stack."""

import difflib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose_command() -> list[str]:
    """``docker compose`` where the plugin is installed, else Debian's ``docker-compose``."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    assert shutil.which("docker-compose"), "the test command installs docker-compose; run scripts/test"
    return ["docker-compose"]


def compose_config(**env: str) -> subprocess.CompletedProcess:
    command = compose_command()
    base = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    return subprocess.run(
        [*command, "-f", "docker-compose.yml", "config"], cwd=ROOT, env={**base, **env}, capture_output=True, text=True
    )


def test_compose_file_is_valid_and_complete():
    result = compose_config(SECRET_KEY="s3cret")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"postgres", "redis", "web", "worker", "gpu-worker", "juror-1", "juror-2", "juror-3"} <= set(services)
    assert "gunicorn config.wsgi" in services["web"]["command"]
    assert "-Q default" in services["worker"]["command"]
    assert "-Q gpu" in services["gpu-worker"]["command"]
    assert services["gpu-worker"]["build"]["args"]["EXTRAS"] == "ml,gpu"
    assert services["web"]["build"]["args"]["EXTRAS"] == services["worker"]["build"]["args"]["EXTRAS"] == "ml"
    for name in ("gpu-worker", "juror-1", "juror-2", "juror-3"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    for name in ("juror-1", "juror-2", "juror-3"):
        assert services[name]["image"].startswith("vllm/vllm-openai")
    web_env = services["web"]["environment"]
    assert web_env["DEBUG"] == "0" and web_env["DATABASE_URL"].startswith("postgres://")
    assert web_env["REDIS_URL"].startswith("redis://")


def side_by_side_bench():
    """bench/side_by_side.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("side_by_side", ROOT / "bench" / "side_by_side.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_side_by_side_bench_runs_the_composed_web_layout():
    """bench/side_by_side.py measures the layout docker-compose.yml deploys (gthread, keep-alive)."""
    bench = side_by_side_bench()
    web = yaml.safe_load(compose_config(SECRET_KEY="s3cret").stdout)["services"]["web"]["command"]
    assert bench.gunicorn_layout(bench.WEB_WORKERS, bench.WEB_THREADS) in " ".join(web.split())


def test_the_side_by_side_bench_labels_one_request_per_item_with_the_harness_code(shared_data):
    """--loop one-request: the harness's own labelling code, pulling with /next/ only when no
    submission answered the next item; the rest of aegis_bench.py is unchanged."""
    harness = (shared_data.parent / "bench-anchors" / "aegis_bench.py").read_text()
    patched = side_by_side_bench().one_request_loop(harness)
    compile(patched, "aegis_bench.py", "exec")
    diff = list(difflib.ndiff(harness.splitlines(), patched.splitlines()))
    added = [line[2:].strip() for line in diff if line[:2] == "+ "]
    removed = [line[2:].strip() for line in diff if line[:2] == "- "]
    submit = 'r = sess.post(f"{base}/api/assignments/{aid}/submit/{}", json=label, timeout=120)'
    new_lines = [
        'view, sess.following = getattr(sess, "following", None), None  # from the last submission',
        "if view is None:",
        submit.replace("{}", "?then=next"),
        'sess.following = r.json()["next"]',
    ]
    assert set(new_lines) <= set(added)
    # The pull, indented under "if view is None:", is the harness's own.
    original_submit = submit.replace("{}", "")
    assert [line for line in added if line not in new_lines] == [line for line in removed if line != original_submit]


def test_the_side_by_side_bench_counts_every_postgresql_process_and_the_exited_backends(tmp_path):
    """PostgreSQL's CPU in the labelling phase: live processes, plus the exited backends' time the
    postmaster reaped (the harness's own count misses backends replaced during the phase)."""
    bench = side_by_side_bench()

    def process(pid: int, name: str, parent: int, utime: int, stime: int, cutime: int, cstime: int) -> None:
        (tmp_path / str(pid)).mkdir()
        fields = ["S", parent, *[0] * 9, utime, stime, cutime, cstime, 20, 0]
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({name}) {' '.join(map(str, fields))}\n")

    process(100, "postgres", 1, 3, 1, 500, 200)  # the postmaster: its reaped children's time counts
    process(101, "postgres", 100, 40, 10, 7, 7)  # a backend (children's time of a backend: not PostgreSQL's)
    process(102, "python3", 100, 900, 900, 900, 900)  # not PostgreSQL
    (tmp_path / "self").mkdir()
    assert bench.postgres_cpu_seconds(tmp_path) == (3 + 1 + 500 + 200 + 40 + 10) / os.sysconf("SC_CLK_TCK")


def test_compose_requires_a_secret_key():
    result = compose_config()
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr
