"""Writes of evaluation: runs started (guard and benchmark specs checked and resolved, options
pinned), run cell by cell (guard × benchmark; progress per chunk of items, cancellable, resumable
after a worker died), and their predictions, reports and plots written under MEDIA_ROOT."""

import json
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from annotation.exporting import file_digest
from annotation.importing.errors import ImportDataError, Location
from annotation.models import ExportSnapshot
from annotation.permissions import require_admin
from core.errors import ApplicationError
from core.files import atomic_file
from core.jobs import CONNECTION_LOST, JobCancelled, JobLost, JobRun, cancel_job, start_job
from core.outbound import OutboundRefused, check_endpoint_url, check_server_path
from guards.backends.registry import queue_for
from guards.formats.registry import get_format, parser_formats
from guards.items import Prediction
from guards.runners.backend import EndpointRunner
from guards.runners.base import GuardRunner, UnsupportedTask, close_runner
from guards.runners.factory import GUARD_OPTIONS
from jury.runners import runner_for_juror
from training.runners import runner_for_guard

from . import reports
from .benchmarks import BENCHMARKS, Benchmark, BenchmarkItem, get_benchmark
from .metrics import category_metrics
from .models import EvaluationRun
from .permissions import require_evaluator, require_run_access
from .predictions import GUARDREASONER_PREDICTION_BENCHMARKS, PredictionFileRunner, score_predictions
from .selectors import EXPORT_TASKS, export_task_gaps, export_title

logger = logging.getLogger(__name__)

# Items asked at once (unless the runner says otherwise with ``chunk_size``); progress is stored
# and cancellation checked between chunks.
CHUNK = 128
DEFAULT_OPTIONS: dict[str, Any] = {
    "threshold": 0.5,
    "bootstrap": 1000,
    "confidence": 0.95,
    "seed": 0,
    "limit": None,
    "taxonomy": None,
    "plots": True,
}


class EvaluationError(ApplicationError):
    """Specs or options that cannot make an evaluation run; the message names the part."""


# --- starting ------------------------------------------------------------------------------------


def check_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The run options with defaults, checked; ``taxonomy`` (id or slug) becomes a taxonomy id."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise EvaluationError(f"unknown options: {', '.join(unknown)} (known: {', '.join(DEFAULT_OPTIONS)})")
    checked = {**DEFAULT_OPTIONS, **{k: v for k, v in options.items() if v is not None}}

    def number(name: str, low: float, high: float, kind: type = float) -> None:
        value = checked[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
            raise EvaluationError(
                f"option {name}: expected {'an integer' if kind is int else 'a number'}, got {value!r}"
            )
        if not low <= value <= high:
            raise EvaluationError(f"option {name}: must be from {low:g} to {high:g}, got {value!r}")
        checked[name] = kind(value)

    number("threshold", 0.0, 1.0)
    number("bootstrap", 0, 10_000, int)
    number("confidence", 0.5, 0.999)
    number("seed", 0, 2**31, int)
    if checked["limit"] is not None:
        number("limit", 1, 10**9, int)
    if not isinstance(checked["plots"], bool):
        raise EvaluationError(f"option plots: expected true or false, got {checked['plots']!r}")
    if checked["taxonomy"] is not None:
        checked["taxonomy"] = _taxonomy(checked["taxonomy"]).pk
    return checked


def _taxonomy(value: Any):
    from taxonomy.models import Taxonomy
    from taxonomy.selectors import get_taxonomy

    try:
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return Taxonomy.objects.get(pk=int(value))
        return get_taxonomy(str(value))
    except Taxonomy.DoesNotExist:
        raise EvaluationError(f"option taxonomy: no taxonomy {value!r}") from None


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name} ({number})", number + 1
    taken.add(candidate)
    return candidate


@dataclass
class _Resolved:
    guards: list[dict] = field(default_factory=list)
    benchmarks: list[dict] = field(default_factory=list)
    guard_models: list = field(default_factory=list)
    projects: list = field(default_factory=list)


def _resolve_guard(spec: Any, by, resolved: _Resolved) -> dict:
    from jury.models import Juror
    from training.models import GuardModel
    from training.selectors import guard_models_for

    if not isinstance(spec, dict):
        raise EvaluationError(f'guard {spec!r}: expected an object such as {{"guard": 3}}')
    kinds = [key for key in ("guard", "juror", "endpoint", "predictions") if key in spec]
    if len(kinds) != 1:
        raise EvaluationError(f"guard {spec!r}: give exactly one of guard, juror, endpoint, predictions")
    kind = kinds[0]
    key = spec[kind]
    if kind in ("guard", "juror") and (isinstance(key, bool) or not isinstance(key, int | str)):
        raise EvaluationError(f"{kind} {key!r}: expected an id (or, for a guard, its name)")
    if kind == "juror" and not str(key).isdigit():
        raise EvaluationError(f"juror {key!r}: expected an id")
    out = {kind: key}
    if kind == "guard":
        guards = GuardModel.objects.all() if by is None else guard_models_for(by)
        guard = (
            guards.filter(**({"pk": key} if isinstance(key, int) else {"name": str(key)}))
            .select_related("run__blend__project")
            .first()
        )
        if guard is None:
            raise EvaluationError(f"guard {key!r}: no such guard model (or not yours to evaluate)")
        options = dict(spec.get("options") or {})
        # threshold and taxonomy are the run's options; keys are never stored in a run's record
        bad = sorted((set(options) - GUARD_OPTIONS) | ({"threshold", "taxonomy", "api_key", "name"} & set(options)))
        if bad:
            raise EvaluationError(f"guard {guard.name!r}: options {', '.join(bad)} cannot be set per guard here")
        out.update(guard=guard.pk, name=spec.get("name") or guard.name, options=options)
        resolved.guard_models.append(guard)
        if guard.run_id:
            resolved.projects.append(guard.run.blend.project)
    elif kind == "juror":
        juror = Juror.objects.select_related("project").filter(pk=int(key)).first()
        if juror is None:
            raise EvaluationError(f"juror {spec['juror']!r}: no such juror")
        if by is not None:
            require_admin(by, juror.project)
        out.update(juror=juror.pk, name=spec.get("name") or f"{juror.name} ({juror.project.slug})")
        resolved.projects.append(juror.project)
    elif kind == "endpoint":
        if not isinstance(spec["endpoint"], str) or not spec["endpoint"].startswith(("http://", "https://")):
            raise EvaluationError(f"endpoint {spec['endpoint']!r}: expected the server's base URL (http…/v1)")
        try:
            check_endpoint_url(spec["endpoint"])
        except OutboundRefused as error:
            raise EvaluationError(f"endpoint {error}") from None
        if not spec.get("model"):
            raise EvaluationError(f"endpoint {spec['endpoint']}: name the served model (model)")
        prompt_format = spec.get("prompt_format", "nemoguard")
        try:
            get_format(prompt_format)
        except ValueError as error:
            raise EvaluationError(str(error)) from None
        options = dict(spec.get("options") or {})
        allowed = {"max_tokens", "concurrency", "structured_output", "timeout"}  # no keys in a run's record
        if set(options) - allowed:
            raise EvaluationError(f"endpoint options: {', '.join(sorted(set(options) - allowed))} unknown")
        out.update(model=spec["model"], prompt_format=prompt_format, name=spec.get("name") or spec["model"])
        out["options"] = options
    else:
        path = check_server_path(by, str(spec["predictions"]), "evaluate prediction files")
        parser = spec.get("parser", "guardreasoner")
        parsers = parser_formats()
        if parser not in parsers:
            raise EvaluationError(f"predictions {path}: unknown parser {parser!r} (choose {', '.join(parsers)})")
        if not path.exists():
            raise EvaluationError(f"predictions {path}: no such file or folder")
        fields = {k: spec[k] for k in ("output_field", "id_field", "score_field") if spec.get(k)}
        out.update(
            predictions=str(path), parser=parser, fields=fields, name=spec.get("name") or f"{parser}:{path.name}"
        )
    return out


def _resolve_benchmark(spec: Any, by, resolved: _Resolved) -> dict:
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise EvaluationError(f"benchmark {spec!r}: expected a name or an object with a name")
    name = spec["name"]
    if name not in BENCHMARKS:
        raise EvaluationError(f"unknown benchmark {name!r}: choose one of {', '.join(BENCHMARKS)}")
    benchmark = BENCHMARKS[name]
    if spec.get("export") is not None:
        if name not in EXPORT_TASKS:
            raise EvaluationError(f"benchmark {name}: an export is read by export_prompt or export_response")
        if not str(spec["export"]).isdigit():
            raise EvaluationError(f"benchmark {name}: export {spec['export']!r} is not an export id")
        export = ExportSnapshot.objects.select_related("project").filter(pk=int(spec["export"])).first()
        if export is None:
            raise EvaluationError(f"benchmark {name}: no export snapshot {spec['export']!r}")
        if by is not None:
            require_admin(by, export.project)
        if not export.succeeded:
            raise EvaluationError(f"export {export.pk} is {export.status}: only a finished export can be evaluated on")
        gap = export_task_gaps(export).get(name)
        if gap:
            raise EvaluationError(f"benchmark {name}: {export_title(export)} cannot be used: {gap}")
        resolved.projects.append(export.project)
        part = name.removeprefix("export_")
        return {"name": name, "export": export.pk, "label": spec.get("label") or f"export{export.pk}_{part}"}
    if spec.get("path"):
        path = check_server_path(by, str(spec["path"]), "evaluate benchmark files")
        if not path.exists():
            raise EvaluationError(f"benchmark {name}: {path} does not exist")
        return {"name": name, "path": str(path), "label": spec.get("label") or name}
    if not benchmark.shipped:
        raise EvaluationError(f"benchmark {name} is not shipped: give the path of a {benchmark.description} file")
    return {"name": name, "label": spec.get("label") or name}


def start_evaluation_run(
    *,
    by,
    guards: list[Any],
    benchmarks: list[Any],
    options: dict[str, Any] | None = None,
    name: str = "",
) -> EvaluationRun:
    """Checks and resolves the guards, benchmarks and options, and records a run to start (now or
    on a worker). ``by`` None is the command line (the server's operator): no permission check."""
    if by is not None:
        require_evaluator(by)
    if not guards:
        raise EvaluationError("choose at least one guard")
    if not benchmarks:
        raise EvaluationError("choose at least one benchmark")
    checked = check_options(options)
    resolved = _Resolved()
    names: set[str] = set()
    for spec in guards:
        guard = _resolve_guard(spec, by, resolved)
        guard["name"] = _unique(str(guard["name"])[:200], names)
        resolved.guards.append(guard)
    labels: set[str] = set()
    for spec in benchmarks:
        benchmark = _resolve_benchmark(spec, by, resolved)
        if benchmark["label"] in labels:
            raise EvaluationError(f"benchmark {benchmark['label']} is chosen twice")
        labels.add(benchmark["label"])
        resolved.benchmarks.append(benchmark)
    run = EvaluationRun.objects.create(
        name=name or "",
        project=resolved.projects[0] if resolved.projects else None,
        guards=resolved.guards,
        benchmarks=resolved.benchmarks,
        options=checked,
        created_by=by,
    )
    run.guard_models.set(resolved.guard_models)
    return run


def queue_evaluation_run(*, by, **data: Any) -> EvaluationRun:
    """``start_evaluation_run``, with the run queued once the transaction commits (the page and the API)."""
    with transaction.atomic():
        run = start_evaluation_run(by=by, **data)
        start_job(run)
    return run


def runs_to_compare(user, ids: list[str]) -> list[EvaluationRun]:
    """The runs named by id (``"3,5"`` or one per entry), in the order given, each one the user may see."""
    try:
        keys = [int(value) for text in ids for value in text.split(",") if value.strip()]
    except ValueError:
        raise EvaluationError("runs: expected run ids") from None
    if not keys:
        raise EvaluationError("runs: name at least one run")
    found = {run.pk: run for run in EvaluationRun.objects.filter(pk__in=keys).select_related("project")}
    missing = [key for key in keys if key not in found]
    if missing:
        raise EvaluationError(f"no evaluation run {missing[0]}")
    for run in found.values():
        require_run_access(user, run)
    return [found[key] for key in dict.fromkeys(keys)]


def cancel_evaluation_run(run: EvaluationRun, *, by) -> None:
    """Asks a running run to stop between chunks; a run no worker has taken yet ends at once."""
    if by is not None:
        require_run_access(by, run)
    cancel_job(run)


# --- runners -------------------------------------------------------------------------------------


def build_runner(spec: dict, options: dict[str, Any], benchmark_name: str | None = None) -> GuardRunner:
    """The runner of a resolved guard spec. A prediction folder (GuardReasoner's layout,
    ``<folder>/<Benchmark>/generated_predictions.jsonl``) gives one file per benchmark."""
    from jury.models import Juror
    from taxonomy.models import Taxonomy
    from training.models import GuardModel

    taxonomy = Taxonomy.objects.get(pk=options["taxonomy"]) if options.get("taxonomy") else None
    if "guard" in spec:
        guard = GuardModel.objects.select_related("taxonomy").get(pk=spec["guard"])
        extra = {"taxonomy": taxonomy} if taxonomy else {}
        return runner_for_guard(guard, name=spec["name"], threshold=options["threshold"], **extra, **spec["options"])
    if "juror" in spec:
        return runner_for_juror(Juror.objects.select_related("project__taxonomy").get(pk=spec["juror"]),
                                taxonomy=taxonomy, name=spec["name"])  # fmt: skip
    if "endpoint" in spec:
        return EndpointRunner(spec["endpoint"], spec["model"], spec["prompt_format"], taxonomy=taxonomy,
                              name=spec["name"], **spec.get("options", {}))  # fmt: skip
    path = Path(spec["predictions"])
    if path.is_dir():
        path = prediction_file_for(path, benchmark_name)
    return PredictionFileRunner(path, spec["parser"], name=spec["name"], **spec.get("fields", {}))


def prediction_file_for(folder: Path, benchmark_name: str | None) -> Path:
    """The file answering a benchmark in a folder of GuardReasoner-style prediction folders."""
    for folder_name, names in GUARDREASONER_PREDICTION_BENCHMARKS.items():
        candidate = folder / folder_name / "generated_predictions.jsonl"
        if benchmark_name in names and candidate.is_file():
            return candidate
    raise UnsupportedTask(f"{folder} holds no prediction file for {benchmark_name}")


def evaluation_queue(run: EvaluationRun) -> str:
    """``gpu`` when a guard runs a causal LM in process (LoRA, in-process vLLM or transformers
    jurors), else ``default`` (HTTP endpoints, the MiniLM CPU guard, prediction files)."""
    from jury.models import Juror
    from training.models import GuardModel, TrainerKind

    for spec in run.guards:
        if "guard" in spec:
            guard = GuardModel.objects.filter(pk=spec["guard"]).first()
            if guard and guard.kind == TrainerKind.LORA and not spec.get("options", {}).get("base_url"):
                return "gpu"
        elif "juror" in spec:
            juror = Juror.objects.filter(pk=spec["juror"]).first()
            if juror and queue_for(juror.backend) == "gpu":
                return "gpu"
    return "default"


# --- running -------------------------------------------------------------------------------------


@dataclass
class LoadedBenchmark:
    """One benchmark column as read for this run: its items (after ``limit``) or why it could not be read."""

    label: str
    benchmark: Benchmark
    items: list[BenchmarkItem]
    all_items: list[BenchmarkItem]
    info: dict[str, Any]
    gold_taxonomy: Any = None
    error: str | None = None


def _limited(items: list[BenchmarkItem], limit: int | None, seed: int) -> list[BenchmarkItem]:
    """A seeded sample of ``limit`` items kept in the benchmark's order (all of them without a limit)."""
    if not limit or limit >= len(items):
        return items
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def _load_benchmark(spec: dict, options: dict[str, Any]) -> LoadedBenchmark:
    benchmark = get_benchmark(spec["name"])
    info: dict[str, Any] = {
        "label": spec["label"],
        "name": benchmark.name,
        "task": benchmark.task.value,
        "positive_class": benchmark.task.positive_class,
        "positive_values": sorted(value for value, positive in benchmark.labels.items() if positive),
        "description": benchmark.description,
    }
    gold_taxonomy = None
    try:
        if "export" in spec:
            export = ExportSnapshot.objects.select_related("project__taxonomy").get(pk=spec["export"])
            items = _export_items(benchmark, export)
            info["source"] = f"{export_title(export)} (test split)"
            gold_taxonomy = export.project.taxonomy
        else:
            items = benchmark.load(spec.get("path"))
            info["source"] = spec.get("path") or benchmark.shipped_path
            if benchmark.gold_taxonomy:
                from taxonomy.selectors import get_taxonomy

                gold_taxonomy = get_taxonomy(benchmark.gold_taxonomy)
    except (ImportDataError, OSError, ValueError, ExportSnapshot.DoesNotExist) as error:
        info.update(items=0, evaluated=0, error=str(error))
        return LoadedBenchmark(spec["label"], benchmark, [], [], info, error=str(error))
    chosen = _limited(items, options.get("limit"), options["seed"])
    info.update(
        items=len(items),
        evaluated=len(chosen),
        positives=sum(item.label for item in chosen),
        gold_categories=gold_taxonomy.slug if gold_taxonomy is not None else None,
    )
    return LoadedBenchmark(spec["label"], benchmark, chosen, items, info, gold_taxonomy)


def _export_items(benchmark: Benchmark, export: ExportSnapshot) -> list[BenchmarkItem]:
    """The export's test split as the benchmark's items. An error names the export as the pages
    do, never its folder on the server."""
    title = export_title(export)
    gap = export_task_gaps(export).get(benchmark.name)
    if gap:
        raise ValueError(f"{title}: {gap}")
    try:
        return benchmark.load(export.directory)
    except ImportDataError as error:
        where = [f"{title}, test split"]
        if isinstance(error.location, Location) and (error.location.line or error.location.row):
            where.append(f"line {error.location.line}" if error.location.line else f"row {error.location.row}")
        if error.field:
            where.append(f"field {error.field}")
        raise ValueError(f"{', '.join(where)}: {error.message}") from None
    except OSError:
        logger.exception("evaluation: %s (folder %s) could not be read", title, export.directory)
        raise ValueError(f"{title}: its test split could not be read on the server") from None


def _category_results(column: LoadedBenchmark, runner: GuardRunner, predictions: list[Prediction]) -> dict | None:
    """Per-category precision and recall where the benchmark has gold categories in a known
    taxonomy and the guard names categories in one (through the mapping between the two)."""
    source = getattr(runner, "taxonomy", None)
    target = column.gold_taxonomy
    if source is None or target is None or not any(item.categories for item in column.items):
        return None
    from taxonomy.models import TaxonomyMapping
    from taxonomy.selectors import CategoryIndex, get_mapping, mapping_table

    mapping_info: dict[str, Any] = {"source": str(source), "target": str(target)}
    if source.pk == target.pk:
        table = None
        mapping_info["notes"] = "same taxonomy"
    else:
        try:
            mapping = get_mapping(source, target)
        except TaxonomyMapping.DoesNotExist:
            return {"skipped": f"no category mapping from {source} to {target}", "mapping": mapping_info}
        table = mapping_table(mapping)
        mapping_info["notes"] = mapping.notes
    index = CategoryIndex.for_taxonomy(target)
    gold = []
    for item in column.items:
        codes = []
        for name in item.categories:
            category = index.resolve(name)
            codes.append(category.code if category else name)
        gold.append(codes)
    predicted, unmapped = [], Counter()
    for prediction in predictions:
        codes: list[str] = []
        for code in prediction.categories:
            targets = [code] if table is None else table.get(code)
            if not targets:
                unmapped[code] += 1
            codes.extend(targets or [])
        predicted.append(codes if prediction.label is not None else None)
    result = category_metrics(gold, predicted).to_dict()
    result["unmapped"] = dict(sorted(unmapped.items()))
    result["mapping"] = mapping_info
    return result


def _write_predictions(path: Path, items: list[BenchmarkItem], predictions: list[Prediction]) -> None:
    with atomic_file(path) as stream:
        for item, prediction in zip(items, predictions):
            row = {"uid": item.uid, "gold": item.label, "label": prediction.label, "score": prediction.score,
                   "categories": list(prediction.categories), "error": prediction.error}  # fmt: skip
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")


class _Stopped(Exception):
    """Cancelled in the middle of a cell."""


def _predict(run: EvaluationRun, runner: GuardRunner, column: LoadedBenchmark, job_run: JobRun) -> list[Prediction]:
    """The runner's predictions for the column's items, asked chunk by chunk (progress stored,
    cancellation checked between chunks). A runner that reads a whole benchmark file (prediction
    files) is asked once for every item, and its predictions for the chosen items are kept."""
    task = column.benchmark.task
    if getattr(runner, "full_benchmark", False):
        everything = runner.predict(column.all_items, task)
        by_uid = {prediction.uid: prediction for prediction in everything}
        EvaluationRun.objects.filter(pk=run.pk).update(done=F("done") + len(column.items))
        return [by_uid[item.uid] for item in column.items]
    predictions: list[Prediction] = []
    size = getattr(runner, "chunk_size", CHUNK)
    for start in range(0, len(column.items), size):
        if start and job_run.cancel_requested():
            raise _Stopped
        chunk = column.items[start : start + size]
        answered = runner.predict(chunk, task)
        if [p.uid for p in answered] != [item.uid for item in chunk]:
            raise ValueError(f"{runner.name} answered {len(answered)} predictions out of order for {len(chunk)} items")
        predictions.extend(answered)
        EvaluationRun.objects.filter(pk=run.pk).update(done=F("done") + len(chunk))
    return predictions


def _runner_for(spec: dict, options: dict[str, Any], benchmark: str, runners: dict[str, GuardRunner]) -> GuardRunner:
    """The guard's runner, kept across its benchmarks so that its model loads once (a folder of
    prediction files gives a runner per benchmark)."""
    if "predictions" in spec:
        return build_runner(spec, options, benchmark)
    key = json.dumps(spec, sort_keys=True)
    if key not in runners:
        runners[key] = build_runner(spec, options)
    return runners[key]


def _close_runners(runners: dict[str, GuardRunner]) -> None:
    while runners:
        close_runner(runners.popitem()[1])


def _cell(job_run: JobRun, spec: dict, column: LoadedBenchmark, folder: Path, runners: dict[str, GuardRunner]) -> dict:
    """One guard × benchmark: predictions, scores, per-category results, or the error."""
    cell: dict[str, Any] = {
        "guard": spec["name"],
        "benchmark": column.label,
        "task": column.benchmark.task.value,
        "n": len(column.items),
        "result": None,
        "categories": None,
        "error": None,
        "unsupported": False,
    }
    if column.error:
        cell["error"] = f"the benchmark could not be read: {column.error}"
        return cell
    run = job_run.job
    options = run.options
    started = time.perf_counter()
    try:
        runner = _runner_for(spec, options, column.benchmark.name, runners)
        predictions = _predict(run, runner, column, job_run)
        seconds = time.perf_counter() - started
        scored = any(p.score is not None for p in predictions)
        result = score_predictions(
            column.items,
            predictions,
            positive_class=column.benchmark.task.positive_class,
            threshold=getattr(runner, "threshold", None) if scored else None,
            bootstrap_samples=options["bootstrap"],
            confidence=options["confidence"],
            seed=options["seed"],
        )
        relative = Path("predictions") / (slugify(spec["name"])[:60] or "guard") / f"{slugify(column.label)}.jsonl"
        _write_predictions(folder / relative, column.items, predictions)
        cell.update(
            result=result.to_dict(),
            categories=_category_results(column, runner, predictions),
            seconds=round(seconds, 3),
            samples_per_second=round(len(predictions) / seconds, 1) if seconds > 0 else None,
            predictions=str(relative),
            scored=scored,
        )
    except (_Stopped, JobLost, *CONNECTION_LOST):
        raise
    except UnsupportedTask as error:
        cell.update(error=str(error), unsupported=True)
    except Exception as error:  # one guard × benchmark failing leaves the others to run
        logger.exception("evaluation run %s: %s on %s failed", run.pk, spec["name"], column.label)
        cell["error"] = f"{type(error).__name__}: {error}"
    return cell


def run_evaluation(run: EvaluationRun, *, on_cell: Callable[[dict], None] | None = None) -> EvaluationRun:
    """Runs every guard × benchmark cell not yet in the results (a redelivered task resumes),
    guard by guard so that each model loads once; stops between chunks when cancelled; then
    writes the reports and plots. ``on_cell`` is told of each finished cell (the command prints)."""
    with JobRun(run, swallow=(Exception,)) as job_run:
        if not job_run.claimed:
            return run
        folder = Path(run.directory) if run.directory else _media("evaluations", f"{run.pk}-{uuid.uuid4().hex[:8]}")
        folder.mkdir(parents=True, exist_ok=True)
        EvaluationRun.objects.filter(pk=run.pk).update(directory=str(folder))
        run.refresh_from_db()
        columns = [_load_benchmark(spec, run.options) for spec in run.benchmarks]
        results = dict(run.results or {})
        results["benchmarks"] = [column.info for column in columns]
        cells = [cell for cell in results.get("cells", [])]
        finished = {(cell["guard"], cell["benchmark"]) for cell in cells}
        total = len(run.guards) * sum(len(column.items) for column in columns)
        done = sum(cell["n"] for cell in cells)
        results["cells"] = cells
        EvaluationRun.objects.filter(pk=run.pk).update(total=total, done=done, results=results)
        cancelled = False
        runners: dict[str, GuardRunner] = {}
        try:
            for spec in run.guards:
                for column in columns:
                    if (spec["name"], column.label) in finished:
                        continue
                    if job_run.cancel_requested():
                        raise _Stopped
                    cell = _cell(job_run, spec, column, folder, runners)
                    cells.append(cell)
                    done += len(column.items)
                    EvaluationRun.objects.filter(pk=run.pk).update(done=done, results=results)
                    if on_cell:
                        on_cell(cell)
                _close_runners(runners)  # the next guard's model may need the memory
        except _Stopped:
            cancelled = True
        finally:
            _close_runners(runners)
        run.refresh_from_db()
        _write_outputs(run, folder)
        answered = [cell for cell in cells if cell["result"] is not None]
        if cancelled:
            raise JobCancelled
        if not answered:
            job_run.fail(
                "no guard × benchmark cell could be scored: "
                + "; ".join(sorted({cell["error"] for cell in cells if cell["error"]}))[:2000]
            )
    run.refresh_from_db()
    return run


def _media(*parts: str) -> Path:
    return Path(settings.MEDIA_ROOT).joinpath(*parts)


def _write_outputs(run: EvaluationRun, folder: Path) -> None:
    """The report in three formats, the plots, and a manifest with checksums, in the run's folder."""
    table = reports.table_for_runs([run])
    files = {
        "report.md": reports.to_markdown(table),
        "report.csv": reports.to_csv(table),
        "report.json": reports.to_json(table),
    }
    for name, text in files.items():
        with atomic_file(folder / name) as stream:
            stream.write(text)
    results = dict(run.results or {})
    plots: list[str] = []
    if run.options.get("plots", True):
        try:
            plots = reports.write_plots(run, folder / "plots")
        except Exception as error:  # a plot that fails leaves the numbers standing
            logger.exception("evaluation run %s: plots failed", run.pk)
            results["plot_error"] = f"{type(error).__name__}: {error}"
    results["plots"] = plots
    manifest = {
        "format": "aegis-evaluation/1",
        "run": run.pk,
        "name": run.name,
        "guards": run.guards,
        "benchmarks": run.benchmarks,
        "options": run.options,
        "files": {
            str(path.relative_to(folder)): file_digest(path)
            for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.name.startswith(".") and path.name != "manifest.json"
        },
        "written_at": timezone.now().isoformat(),
    }
    with atomic_file(folder / "manifest.json") as stream:
        stream.write(json.dumps(manifest, indent=2))
    EvaluationRun.objects.filter(pk=run.pk).update(results=results)
    run.refresh_from_db()
