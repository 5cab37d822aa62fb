"""Online moderation latency: decisions through the API with three CPU experts, and the
ensemble's own cost per round.

    .venv/bin/python bench/moderation_latency.py [--requests 200] [--db sqlite|postgres] [--guards DIR DIR DIR]

1. Trains three MiniLM guards (a few steps each, different seeds and LoRA ranks, on XSTest
   prompts; quality does not matter here) unless ``--guards`` names trained run folders, and
   makes a paper-wm ensemble of them.
2. Sends real XSTest texts (the GPT-4 completions file: half prompt-only, half with the
   response) as ``POST /api/moderation/{slug}/`` with token auth through Django's test client,
   after a warm-up that loads the models; prints p50/p95/p99 of the request time, and of the
   server's own ``latency_ms`` (experts + ensemble), with the experts asked at once and one
   after another.
3. The ensemble without experts, per round, for WM, FPL and Hedge: a decision on given votes
   (read the state, predict, write the decision) and a feedback (lock the state, update, write
   the history row, save the state); and the pure in-memory predict + update for comparison.
"""

import argparse
import contextlib
import csv
import io
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
POSTGRES = os.environ.get("AEGIS_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return (
        f"p50 {at(0.5):7.2f} ms  p95 {at(0.95):7.2f} ms  p99 {at(0.99):7.2f} ms  "
        f"mean {statistics.fmean(ordered):7.2f} ms  (n={len(ordered)})"
    )


def xstest_rows(data: Path) -> list[dict]:
    with (data / "xstest" / "model_completions" / "xstest_v2_completions_gpt4.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def train_guards(folder: Path, rows: list[dict]) -> list[Path]:
    from training.trainers.minilm import MiniLMSettings, train_minilm

    examples = []
    for row in rows:
        unsafe = row["type"].startswith("contrast")
        label = "unsafe" if unsafe else "safe"
        examples.append({"kind": "safety", "text": row["prompt"], "response": row["completion"],
                         "prompt_label": label, "response_label": label})  # fmt: skip
    folders = []
    for index, (seed, rank) in enumerate([(1, 8), (2, 4), (3, 16)]):
        out = folder / f"guard-{index}"
        settings = MiniLMSettings(max_steps=3, max_length=64, batch_size=8, seed=seed, rank=rank)
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the trainer prints its log lines
            train_minilm(examples, [], out, settings, lambda *args: False)
        print(f"trained {out.name} (seed {seed}, rank {rank}) in {time.perf_counter() - started:.1f} s")
        folders.append(out)
    return folders


def api_latency(client, slug: str, requests: list[dict]) -> tuple[list[float], list[float]]:
    from moderation.models import Decision

    wall, server = [], []
    for body in requests:
        started = time.perf_counter()
        answer = client.post(f"/api/moderation/{slug}/", body, content_type="application/json")
        wall.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.content[:500]
        server.append(Decision.objects.get(pk=answer.json()["decision_id"]).latency_ms)
    return wall, server


def ensemble_overhead(staff, guard, rounds: int) -> None:
    from moderation import online, services
    from moderation.experts import ExpertAnswer

    rng = random.Random(0)
    votes = [[rng.choice([0, 1]) for _ in range(3)] for _ in range(rounds)]
    truths = [rng.choice(["safe", "unsafe"]) for _ in range(rounds)]
    for algorithm in ("paper-wm", "paper-fpl", "hedge"):
        ensemble = services.create_ensemble(
            name=f"overhead {algorithm}", slug=f"overhead-{algorithm}", by=staff, algorithm=algorithm,
            experts=[{"guard": guard.pk, "name": f"e{i}"} for i in range(3)],
        )  # fmt: skip
        decide, feedback = [], []
        for round_votes, truth in zip(votes, truths):
            answers = [ExpertAnswer(vote) for vote in round_votes]
            started = time.perf_counter()
            decision = services.record_decision(ensemble, "text", None, answers)
            decide.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            services.record_feedback(decision.pk, truth)
            feedback.append((time.perf_counter() - started) * 1000)
        state = online.new_state(algorithm, 3)
        started = time.perf_counter()
        for round_votes, truth in zip(votes, truths):
            online.predict(state, round_votes)
            state = online.update(state, round_votes, int(truth == "unsafe"))
        pure = (time.perf_counter() - started) * 1000 / rounds
        print(f"{algorithm:>9} decide   {percentiles(decide)}")
        print(f"{algorithm:>9} feedback {percentiles(feedback)}")
        print(f"{algorithm:>9} in memory predict + update: {pure * 1000:.1f} µs per round")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=300, help="rounds of the overhead measurement")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--guards", nargs=3, metavar="DIR", help="three trained MiniLM run folders")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aegis-moderation-") as tmp:
        if args.db == "postgres":
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True) as connection:
                connection.execute("DROP DATABASE IF EXISTS aegis_moderation WITH (FORCE)")
                connection.execute("CREATE DATABASE aegis_moderation")
            os.environ["DATABASE_URL"] = POSTGRES.rsplit("/", 1)[0] + "/aegis_moderation"
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/moderation.sqlite3"
        os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings", "AEGIS_MODERATION_RATE": "1000000/min",
                           "MEDIA_ROOT": f"{tmp}/media", "LOG_LEVEL": "WARNING"})  # fmt: skip
        import django

        django.setup()
        import torch
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client
        from rest_framework.authtoken.models import Token
        from transformers.utils import logging as hf_logging

        from moderation import services
        from moderation.experts import clear_runners
        from training.models import GuardModel
        from training.trainers.minilm import minilm_path

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning)
        call_command("migrate", verbosity=0)
        rows = xstest_rows(Path(settings.AEGIS_SHARED_DATA))
        folders = [Path(p) for p in args.guards] if args.guards else train_guards(Path(tmp), rows)
        staff = get_user_model().objects.create_user("bench", is_staff=True)
        guards = [
            GuardModel.objects.create(name=f"minilm-{i}", kind="minilm", base_model=minilm_path(), path=str(folder))
            for i, folder in enumerate(folders)
        ]
        services.create_ensemble(name="Bench", slug="bench", by=staff, experts=[{"guard": g.pk} for g in guards])
        client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}", HTTP_HOST="localhost")
        rng = random.Random(1)
        requests = []
        for i in range(args.requests):
            row = rng.choice(rows)
            requests.append(
                {"prompt": row["prompt"]} if i % 2 else {"prompt": row["prompt"], "response": row["completion"]}
            )
        print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, {os.cpu_count()} CPUs; "
              f"db {args.db}; {args.requests} requests, half with a response")  # fmt: skip
        started = time.perf_counter()
        api_latency(client, "bench", requests[:2])
        print(f"first requests (models load): {(time.perf_counter() - started) * 1000:.0f} ms for 2")
        for parallel in (True, False):
            settings.AEGIS_MODERATION_PARALLEL = parallel
            api_latency(client, "bench", requests[:10])  # warm
            wall, server = api_latency(client, "bench", requests)
            how = "experts at once" if parallel else "experts in turn"
            print(f"API, {how}:")
            print(f"  request, all           {percentiles(wall)}")
            print(f"  request, prompt only   {percentiles(wall[1::2])}")
            print(f"  request, with response {percentiles(wall[0::2])}")
            print(f"  server latency_ms, all {percentiles(server)}")
        clear_runners()
        print(f"ensemble overhead per round without experts, 3 experts, {args.rounds} rounds:")
        ensemble_overhead(staff, guards[0], args.rounds)


if __name__ == "__main__":
    main()
