"""Agreement report over 35,000 samples x 3 annotations by 12 annotators: wall time and peak RSS.

    .venv/bin/python bench/agreement_report.py [--samples 35000] [--db sqlite|postgres]

Generates the annotations with a known noise rate (so alpha is meaningful), imports them with
the generic adapter into a scratch database, then times ``agreement_report`` (every field,
every category, MASI over category sets, 200 bootstrap resamples for alpha) in this process.
Target: ≤ 2 s.
"""

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
POSTGRES = os.environ.get("AEGIS_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
CODES = ["S1", "S3", "S8", "S9", "S10", "S16"]
TARGET_SECONDS = 2.0


def generate(path: Path, samples: int, annotators: int = 12, per_sample: int = 3, noise: float = 0.15) -> None:
    rng = random.Random(samples)
    with path.open("w", encoding="utf-8") as stream:
        for i in range(samples):
            truth_unsafe = rng.random() < 0.45
            truth_codes = rng.sample(CODES, rng.randint(1, 2)) if truth_unsafe else []
            annotations = []
            for who in rng.sample(range(annotators), per_sample):
                unsafe = truth_unsafe != (rng.random() < noise)
                codes = (truth_codes or rng.sample(CODES, 1)) if unsafe else []
                if unsafe and rng.random() < noise:
                    codes = rng.sample(CODES, 1)
                label = "unsafe" if unsafe else ("needs_caution" if rng.random() < 0.05 else "safe")
                annotations.append(
                    {
                        "annotator": f"bench-annotator-{who:02d}",
                        "prompt_label": label,
                        "response_label": label,
                        "categories": codes,
                    }
                )
            row = {"prompt": f"prompt {i}", "response": f"response {i}", "annotations": annotations}
            stream.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=35_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aegis-agreement-") as tmp:
        if args.db == "postgres":
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True) as connection:
                connection.execute("DROP DATABASE IF EXISTS aegis_agreement WITH (FORCE)")
                connection.execute("CREATE DATABASE aegis_agreement")
            os.environ["DATABASE_URL"] = POSTGRES.rsplit("/", 1)[0] + "/aegis_agreement"
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/agreement.sqlite3"
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        import django

        django.setup()
        from django.core.management import call_command

        from annotation.services import create_project, import_samples
        from annotation.services.reports import agreement_report

        call_command("migrate", verbosity=0)
        project = create_project(name="Agreement", slug="agreement")
        path = Path(tmp) / "annotations.jsonl"
        generate(path, args.samples)
        import_samples(project, path, adapter="generic")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        report = agreement_report(project)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    alpha = report["fields"]["prompt_label"]["alpha"]
    print(f"db {args.db}, {args.samples} samples x 3 annotations, 12 annotators")
    print(f"report: {seconds:.2f} s (target ≤ {TARGET_SECONDS} s: {'met' if seconds <= TARGET_SECONDS else 'MISSED'})")
    print(f"peak RSS {peak:.0f} MB (before the report: {before:.0f} MB)")
    print(f"prompt-label alpha {alpha['value']:.3f}, 95% CI {alpha['ci95'][0]:.3f}–{alpha['ci95'][1]:.3f}")


if __name__ == "__main__":
    main()
