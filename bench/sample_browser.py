"""The sample browser on a large project (PostgreSQL): search and filtered first pages, p50/p95/max.

    .venv/bin/python bench/sample_browser.py --size 1000000 \
        --database-url postgres://postgres@127.0.0.1:5432/aegis_browser_bench [--keep]

Makes the database (dropped at the end unless --keep), migrates, writes SIZE samples with COPY
(words drawn from a Zipf vocabulary, so search terms range from common to rare), final labels
for 60 %, categories for unsafe ones, three annotators' labels on 10 %, queue items for 20 % and
open review items for 1 %; rebuilds the full-text index and ANALYZEs. Then times each scenario
with the code the page uses: the selector (``browse_page``) and the whole page (the view, through
Django's test client, signed in as staff). Target: p95 <= 100 ms for search and filtered pages.
"""

import argparse
import os
import statistics
import sys
import time
from importlib import import_module
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 100.0
VOCABULARY = 20_000
TOPICS = ["bread", "weapon", "password", "recipe", "bomb", "doctor", "stock", "poison", "garden", "hacking"]


def words(size: int) -> list[str]:
    """A vocabulary of pronounceable pseudo-words plus real topic words spread across ranks."""
    syllables = ["ka", "lo", "mi", "ne", "tu", "ra", "si", "po", "de", "va", "gri", "sho", "bel", "tam"]
    vocab = []
    for number in range(size):  # number i in base 14, one syllable per digit: unique words
        word = ""
        while True:
            number, digit = divmod(number, len(syllables))
            word += syllables[digit]
            if number == 0:
                break
        vocab.append(word + "x" * (len(word) < 4))
    rng = np.random.default_rng(7)
    rng.shuffle(vocab)
    for rank, topic in zip((5, 50, 200, 500, 1000, 2000, 5000, 8000, 12000, 19000), TOPICS):
        vocab[rank] = topic
    return vocab


def texts(rng: np.random.Generator, vocab: np.ndarray, count: int, low: int, high: int) -> list[str]:
    lengths = rng.integers(low, high, count)
    ranks = np.minimum(rng.zipf(1.3, lengths.sum()) - 1, len(vocab) - 1)
    tokens = vocab[ranks]
    out, start = [], 0
    for length in lengths:
        out.append(" ".join(tokens[start : start + length]))
        start += length
    return out


def copy_rows(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def populate(size: int) -> None:
    """Writes the samples and their labels with COPY, in chunks, then builds the index."""
    import orjson
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from annotation.models import AssignmentBatch, ImportBatch
    from annotation.services import create_project

    project = create_project(name="Browser bench", slug="browser-bench")
    users = [get_user_model().objects.create_user(f"bench_ann{i}") for i in (1, 2, 3)]
    batch = ImportBatch.objects.create(project=project, adapter="generic", source_name="bench", filename="gen")
    queue = AssignmentBatch.objects.create(project=project, name="bench", annotations_per_sample=3)
    vocab = np.array(words(VOCABULARY), dtype=object)
    rng = np.random.default_rng(size)
    now = timezone.now()
    codes = [f"S{i}" for i in range(1, 13)]
    sources = ["aegis2", "openai_moderation", "hh_rlhf", "xstest"]
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        cursor.execute("DROP INDEX IF EXISTS sample_fulltext")
        chunk = 100_000
        for first in range(1, size + 1, chunk):
            count = min(chunk, size - first + 1)
            ids = range(first, first + count)
            prompts = texts(rng, vocab, count, 8, 40)
            has_response = rng.random(count) < 0.5
            responses = texts(rng, vocab, count, 20, 60)
            labelled = rng.random(count) < 0.6
            unsafe = rng.random(count) < 0.45
            source_pick = rng.integers(0, len(sources), count)
            samples = []
            for i, pk in enumerate(ids):
                response = responses[i] if has_response[i] else None
                turns = [{"role": "user", "content": prompts[i]}]
                if response is not None:
                    turns.append({"role": "assistant", "content": response})
                samples.append(
                    (pk, project.pk, f"b{pk:08d}", orjson.dumps(turns).decode(), prompts[i], response,
                     sources[source_pick[i]], str(pk), f"{pk:064x}", None, "{}", batch.pk, now)
                )  # fmt: skip
            copy_rows(
                cursor,
                "annotation_sample",
                ["id", "project_id", "uid", "turns", "prompt", "response", "source_name", "source_id",
                 "content_hash", "reconstruction_id", "metadata", "import_batch_id", "created_at"],
                samples,
            )  # fmt: skip
            finals, categories = [], []
            for i, pk in enumerate(ids):
                if not labelled[i]:
                    continue
                label = "unsafe" if unsafe[i] else "safe"
                picked = [codes[j] for j in sorted(set(rng.integers(0, 12, 2)))] if unsafe[i] else []
                source = "llm_jury" if rng.random() < 0.3 else "human"
                response_label = "safe" if has_response[i] else None
                response_source = source if has_response[i] else None
                finals.append(
                    (pk, label, source, response_label, response_source, None, orjson.dumps(picked).decode(), now)
                )
                categories.extend((pk, code) for code in picked)
            copy_rows(
                cursor,
                "annotation_finallabel",
                ["sample_id", "prompt_label", "prompt_label_source", "response_label", "response_label_source",
                 "response_refusal", "categories", "updated_at"],
                finals,
            )  # fmt: skip
            copy_rows(cursor, "annotation_samplecategory", ["sample_id", "code"], categories)
            annotated = [pk for i, pk in enumerate(ids) if labelled[i] and rng.random() < 1 / 6]
            copy_rows(
                cursor,
                "annotation_annotation",
                ["sample_id", "annotator_id", "prompt_label", "categories", "other_risks", "comment", "created_at",
                 "updated_at"],
                ((pk, user.pk, "safe", "[]", "", "", now, now) for pk in annotated for user in users),
            )  # fmt: skip
            queued = [pk for i, pk in enumerate(ids) if not labelled[i] and rng.random() < 0.5]
            copy_rows(
                cursor, "annotation_queueitem", ["batch_id", "sample_id", "priority", "done", "submitted_count"],
                ((queue.pk, pk, 0, False, 0) for pk in queued),
            )  # fmt: skip
            review = [pk for i, pk in enumerate(ids) if not labelled[i] and rng.random() < 0.025]
            copy_rows(cursor, "annotation_reviewitem", ["sample_id", "reason", "created_at"],
                      ((pk, "bench", now) for pk in review))  # fmt: skip
            print(f"  wrote {first + count - 1:,} samples", flush=True)
        cursor.execute("SELECT setval(pg_get_serial_sequence('annotation_sample', 'id'), %s)", [size])
        started = time.perf_counter()
        cursor.execute(import_module("annotation.migrations.0008_sample_full_text_search").PG_CREATE[1])
        print(f"  full-text index built in {time.perf_counter() - started:.0f} s", flush=True)
    with connection.cursor() as cursor:
        for table in ("annotation_sample", "annotation_finallabel", "annotation_samplecategory",
                      "annotation_annotation", "annotation_queueitem", "annotation_reviewitem"):  # fmt: skip
            cursor.execute(f"ANALYZE {table}")


def scenarios(vocab: list[str]) -> list[tuple[str, list[dict[str, str]]]]:
    common, mid, rare = vocab[1:11], vocab[300:310], vocab[15000:15010]
    return [
        ("search, common word (~10 % of rows)", [{"q": w} for w in common]),
        ("search, mid-frequency word", [{"q": w} for w in mid]),
        ("search, rare word", [{"q": w} for w in rare]),
        ("search, two words", [{"q": f"{a} {b}"} for a, b in zip(mid, common)]),
        ("search, topic word + label unsafe", [{"q": t, "label": "unsafe"} for t in TOPICS]),
        ("filter label unsafe + source", [{"label": "unsafe", "source": s} for s in ("aegis2", "hh_rlhf")] * 5),
        ("filter category", [{"category": f"S{i}"} for i in range(1, 11)]),
        ("filter annotator", [{"annotator": f"bench_ann{i % 3 + 1}"} for i in range(10)]),
        ("filter status queued", [{"status": "queued"}] * 10),
        ("filter status review", [{"status": "review"}] * 10),
        ("filter status new", [{"status": "new"}] * 10),
        ("filter provenance llm_jury", [{"provenance": "llm_jury"}] * 10),
        ("filter split test (checked in Python)", [{"split": "test"}] * 10),
        ("everything: search + label + category", [{"q": w, "label": "unsafe", "category": "S3"} for w in common]),
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def measure(size: int, rounds: int) -> bool:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from annotation.browse import SampleFilters, browse_page
    from annotation.models import Project

    project = Project.objects.get(slug="browser-bench")
    staff, _ = get_user_model().objects.get_or_create(username="bench_lead", defaults={"is_staff": True})
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(staff)
    url = f"/console/projects/{project.pk}/samples/"
    vocab = words(VOCABULARY)
    print(f"\n{size:,} samples; {rounds} rounds per query; times in ms (first page of 50, newest first)")
    print(f"{'scenario':42} {'selector p50':>12} {'p95':>7} {'page p50':>9} {'p95':>7} {'max':>7}  rows")
    ok = True
    for name, queries in scenarios(vocab):
        selector, page, rows = [], [], []
        for _ in range(rounds):
            for query in queries:
                started = time.perf_counter()
                result = browse_page(project, SampleFilters(**query), page_size=50)
                selector.append((time.perf_counter() - started) * 1000)
                rows.append(len(result.rows))
                started = time.perf_counter()
                response = client.get(url, query)
                page.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (query, response.status_code)
        p95 = percentile(page, 0.95)
        ok &= p95 <= TARGET_MS
        print(
            f"{name:42} {statistics.median(selector):12.1f} {percentile(selector, 0.95):7.1f} "
            f"{statistics.median(page):9.1f} {p95:7.1f} {max(page):7.1f}  {min(rows)}-{max(rows)}"
            f"{'' if p95 <= TARGET_MS else '  ABOVE TARGET'}"
        )
    deep = browse_page(project, SampleFilters(label="unsafe"), cursor=size // 2, page_size=50)
    times = []
    for _ in range(rounds * 10):
        started = time.perf_counter()
        browse_page(project, SampleFilters(label="unsafe"), cursor=size // 2, page_size=50)
        times.append((time.perf_counter() - started) * 1000)
    print(f"{'keyset page in the middle (label unsafe)':42} {statistics.median(times):12.1f} "
          f"{percentile(times, 0.95):7.1f}  rows {len(deep.rows)}")  # fmt: skip
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("AEGIS_BENCH_BROWSER_URL", "postgres://postgres@127.0.0.1:5432/aegis_browser_bench"),
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (and reuse it on the next run)")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DEBUG"] = "1"
    sys.path.insert(0, str(ROOT))
    import psycopg

    name = args.database_url.rsplit("/", 1)[1]
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from annotation.models import Project

    try:
        if not exists or not Project.objects.filter(slug="browser-bench").exists():
            call_command("migrate", verbosity=0)
            started = time.perf_counter()
            populate(args.size)
            print(f"generated in {time.perf_counter() - started:.0f} s")
        print(f"load before timing: {Path('/proc/loadavg').read_text().strip()}")
        ok = measure(args.size, args.rounds)
        print(f"load after timing: {Path('/proc/loadavg').read_text().strip()}")
        print(f"target p95 <= {TARGET_MS:.0f} ms for every page: {'met' if ok else 'NOT met'}")
    finally:
        connections.close_all()
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped database {name}")


if __name__ == "__main__":
    main()
