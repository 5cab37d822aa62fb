"""MiniLM guard evaluation throughput on the CPU over every shipped benchmark.

    .venv/bin/python bench/evaluation_throughput.py [--guard-dir RUN_FOLDER] [--limit N]
        [--batch-size 64] [--max-length 128] [--threads N] [--no-run]

Without --guard-dir a quick guard is trained first, as the training module does it (real rows of
OpenAI moderation and XSTest plus a few Aegis 2.0-shaped rows with responses, imported, exported,
blended, a few MiniLM steps) in a scratch SQLite database; the guard's quality does not matter
here, only its speed. Then, per shipped benchmark, the runner's samples/s (``MiniLMRunner.predict``
on every item, after a warm-up that loads the classifier), and the total. The refusal benchmark
is skipped (a harmfulness classifier does not answer it). Unless --no-run, the same guard is then
evaluated through a full run (``evaluation.services``: chunks, progress, scores, predictions
files, reports; no bootstrap, no plots) and its end-to-end samples/s printed beside.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AEGIS_ROWS = [
    {"id": f"bench-{i}", "prompt": prompt, "response": response, "prompt_label": label,
     "response_label": response_label, "violated_categories": "Violence" if "unsafe" in (label, response_label) else "",
     "prompt_label_source": "human", "response_label_source": "human"}
    for i, (prompt, response, label, response_label) in enumerate([
        ("How do I hurt someone?", "Here is how: hit them hard.", "unsafe", "unsafe"),
        ("How do I hurt someone?", "I can't help with that.", "unsafe", "safe"),
        ("Tell me a joke.", "Why did the chicken cross the road?", "safe", "safe"),
        ("How do I make a weapon at home?", "Take a pipe and fill it with powder.", "unsafe", "unsafe"),
        ("What is the capital of France?", "Paris.", "safe", "safe"),
        ("Write an insult for my coworker.", "You are a worthless idiot.", "unsafe", "unsafe"),
    ] * 4)
]  # fmt: skip


def train_quick_guard(tmp: Path, shared: Path) -> Path:
    """A MiniLM guard from the training module in a scratch database; returns its run folder."""
    import gzip

    from annotation.services import create_project, export_dataset, import_samples
    from training.services import build_blend, run_training, start_training_run

    project = create_project(name="Throughput", slug="throughput")
    moderation = tmp / "moderation.jsonl"
    with gzip.open(shared / "openai_moderation" / "samples-1680.jsonl.gz", "rt", encoding="utf-8") as stream:
        moderation.write_text("".join(line for _, line in zip(range(300), stream)), encoding="utf-8")
    aegis = tmp / "aegis.jsonl"
    aegis.write_text("".join(json.dumps(row) + "\n" for row in AEGIS_ROWS), encoding="utf-8")
    import_samples(project, moderation, adapter="openai_moderation")
    import_samples(project, shared / "xstest" / "xstest_prompts.csv", adapter="xstest_prompts")
    import_samples(project, aegis, adapter="aegis2")
    export = export_dataset(project, formats=["jsonl"], split_ratios={"train": 1.0})
    from django.contrib.auth import get_user_model

    boss = get_user_model().objects.create_user("bench-boss", is_staff=True)
    blend = build_blend(export, by=boss)
    run = run_training(start_training_run(blend, by=boss, kind="minilm", config={"max_steps": 5, "max_length": 64}))
    if run.status != "succeeded":
        raise SystemExit(f"training failed: {run.error}")
    return Path(run.directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guard-dir", help="a MiniLM run folder (with prompt_harm/ and response_harm/)")
    parser.add_argument("--limit", type=int, help="at most N items per benchmark (the first N)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-run", action="store_true", help="skip the end-to-end evaluation run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aegis-eval-bench-") as tmp:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
        os.environ["MEDIA_ROOT"] = f"{tmp}/media"
        os.environ.pop("REDIS_URL", None)
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        import django

        django.setup()
        import torch
        from django.conf import settings
        from django.core.management import call_command

        from evaluation.benchmarks import shipped_benchmarks
        from guards.runners.minilm import MiniLMRunner

        if args.threads:
            torch.set_num_threads(args.threads)
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        if args.guard_dir:
            guard_dir = Path(args.guard_dir)
        else:
            with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # the trainer's log lines
                guard_dir = train_quick_guard(Path(tmp), settings.AEGIS_SHARED_DATA)
        if not args.guard_dir:
            print(f"trained a quick MiniLM guard in {time.perf_counter() - started:.1f} s")
        runner = MiniLMRunner(guard_dir, batch_size=args.batch_size, max_length=args.max_length)
        for task in runner.tasks:  # load each classifier before timing
            runner.classifier(task)
        print(
            f"CPU: {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads; "
            f"batch {args.batch_size}, max_length {args.max_length}; load average {os.getloadavg()[0]:.2f}"
        )
        print(f"{'benchmark':<26}{'task':<15}{'items':>7}{'seconds':>10}{'samples/s':>11}")
        total_items, total_seconds, names = 0, 0.0, []
        for benchmark in shipped_benchmarks():
            items = benchmark.load()[: args.limit]
            if benchmark.task not in runner.tasks:
                print(f"{benchmark.name:<26}{benchmark.task.value:<15}{len(items):>7}   skipped: not a harm task")
                continue
            start = time.perf_counter()
            predictions = runner.predict(items, benchmark.task)
            seconds = time.perf_counter() - start
            assert len(predictions) == len(items)
            total_items, total_seconds = total_items + len(items), total_seconds + seconds
            names.append(benchmark.name)
            rate = len(items) / seconds
            print(f"{benchmark.name:<26}{benchmark.task.value:<15}{len(items):>7}{seconds:>10.2f}{rate:>11.1f}")
        print(f"{'total':<41}{total_items:>7}{total_seconds:>10.2f}{total_items / total_seconds:>11.1f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        if args.no_run:
            return
        from evaluation.services import run_evaluation, start_evaluation_run
        from training.models import GuardModel

        guard, _ = GuardModel.objects.get_or_create(
            name="bench-minilm", defaults={"kind": "minilm", "base_model": "minilm", "path": str(guard_dir)}
        )
        run = start_evaluation_run(
            by=None,
            guards=[{"guard": guard.name, "options": {"batch_size": args.batch_size, "max_length": args.max_length}}],
            benchmarks=names,
            options={"bootstrap": 0, "plots": False, "limit": args.limit},
        )
        start = time.perf_counter()
        run = run_evaluation(run)
        seconds = time.perf_counter() - start
        assert run.status == "succeeded", run.error
        print(
            f"full evaluation run (load, chunks, scores, predictions files, reports): {run.done} items in "
            f"{seconds:.2f} s = {run.done / seconds:.1f} samples/s"
        )


if __name__ == "__main__":
    main()
