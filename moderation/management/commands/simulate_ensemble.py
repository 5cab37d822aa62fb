"""Replays a labelled benchmark as an online stream through an ensemble of experts.

    manage.py simulate_ensemble --benchmark NAME [--benchmark-file PATH]
        [--guardreasoner] [--predictions [NAME=]PATH[@PARSER] ...] [--guard ID|NAME ...] [--juror ID ...]
        [--algorithm paper-wm|paper-fpl|hedge|wm|fpl] [--eta X] [--seed N] [--no-shuffle] [--limit N]
        [--save-predictions DIR] [--plot out.png] [--json out.json]

Each expert's predictions on the whole benchmark are computed once (guards and jurors through
``guards.runners``) or read from files (``evaluation.predictions.read_predictions``); the
stream is the benchmark's items shuffled with the seed; an unreadable answer is an abstention.
Prints each expert's and the ensemble's cumulative mistakes, the regret against the best expert
in hindsight, and whether each theoretical bound held at every round.
"""

import json
import random
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evaluation.benchmarks import get_benchmark
from evaluation.predictions import PredictionFileRunner, guardreasoner_prediction_files
from guards.runners.base import close_runner
from moderation import online

ALGORITHMS = (*online.PRESETS, *online.ALGORITHMS)


def parse_prediction_spec(spec: str) -> tuple[str | None, Path, str]:
    """``[NAME=]PATH[@PARSER]`` → (name, path, parser); the parser defaults to guardreasoner."""
    name, _, rest = spec.rpartition("=") if "=" in spec else (None, "", spec)
    path, _, parser = rest.partition("@")
    return name or None, Path(path), parser or "guardreasoner"


def saved_line(uid: str, label: bool | None, score: float | None, categories) -> dict:
    """A prediction as a Llama Guard answer (``@llama_guard`` reads it back for either harm task)."""
    answer = "" if label is None else ("unsafe" if label else "safe")
    if label and categories:
        answer += "\n" + ",".join(categories)
    return {"id": uid, "predict": answer, "score": score}


class Command(BaseCommand):
    help = "Replay a benchmark through an online ensemble of experts; print mistakes, regret and bounds."

    def add_arguments(self, parser):
        parser.add_argument("--benchmark", required=True, help="a name of evaluation.benchmarks.BENCHMARKS")
        parser.add_argument("--benchmark-file", help="the file of a benchmark that is not shipped")
        parser.add_argument("--guardreasoner", action="store_true", help="GuardReasoner's shipped predictions")
        parser.add_argument("--predictions", action="append", default=[], metavar="[NAME=]PATH[@PARSER]")
        parser.add_argument("--guard", action="append", default=[], metavar="ID|NAME", help="a registered guard")
        parser.add_argument("--juror", action="append", default=[], type=int, metavar="ID")
        parser.add_argument("--algorithm", choices=ALGORITHMS, default="paper-wm")
        parser.add_argument("--eta", type=float, help="learning rate (wm, fpl; presets fix theirs)")
        parser.add_argument("--seed", type=int, default=0, help="shuffles the stream and seeds the draws")
        parser.add_argument("--no-shuffle", action="store_true", help="keep the benchmark's order")
        parser.add_argument("--limit", type=int, help="the first N items (after shuffling)")
        parser.add_argument("--save-predictions", metavar="DIR", help="write computed predictions (@llama_guard)")
        parser.add_argument("--plot", metavar="PNG")
        parser.add_argument("--json", metavar="PATH", help="write the summary as JSON")

    def handle(self, *args, **options):
        try:
            benchmark = get_benchmark(options["benchmark"])
            items = benchmark.load(options["benchmark_file"])
        except (ValueError, FileNotFoundError) as error:
            raise CommandError(str(error)) from None
        experts = self._experts(benchmark, items, options)
        if not experts:
            raise CommandError("no experts: give --guardreasoner, --predictions, --guard or --juror")
        stream = [(item.uid, int(item.label)) for item in items]
        if not options["no_shuffle"]:  # as online.simulate(shuffle=True) does, before the limit
            random.Random(options["seed"]).shuffle(stream)
        if options["limit"]:
            stream = stream[: options["limit"]]
        try:
            result = online.simulate(stream, experts, options["algorithm"], options["seed"], eta=options["eta"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        summary = summarise(result, experts, benchmark.name, options["algorithm"], options["seed"])
        self.stdout.write(report(summary))
        if options["plot"]:
            online.plot_simulation(result, options["plot"])
            self.stdout.write(f"plot: {options['plot']}")
        if options["json"]:
            Path(options["json"]).write_text(json.dumps(summary, indent=2), encoding="utf-8")
            self.stdout.write(f"summary: {options['json']}")

    def _experts(self, benchmark, items, options) -> dict[str, dict[str, int | None]]:
        from jury.runners import runner_for_juror
        from training.runners import runner_for_guard

        sources: list[tuple[str, object, bool]] = []  # (name, runner, computed here)
        if options["guardreasoner"]:
            files = [f for f in guardreasoner_prediction_files() if f.benchmark.name == benchmark.name]
            if not files:
                raise CommandError(f"GuardReasoner ships no predictions for {benchmark.name}")
            for found in files:
                name = f"guardreasoner-{found.model_size}"
                sources.append((name, PredictionFileRunner(found.path, "guardreasoner", name=name), False))
        for spec in options["predictions"]:
            name, path, parser = parse_prediction_spec(spec)
            if not path.is_file():
                raise CommandError(f"{path} does not exist")
            name = name or path.stem
            sources.append((name, PredictionFileRunner(path, parser, name=name), False))
        for reference in options["guard"]:
            guard = _guard(reference)
            sources.append((guard.name, runner_for_guard(guard), True))
        for juror_id in options["juror"]:
            from jury.models import Juror

            juror = Juror.objects.select_related("project__taxonomy").filter(pk=juror_id).first()
            if juror is None:
                raise CommandError(f"no juror {juror_id}")
            sources.append((f"juror:{juror.name}", runner_for_juror(juror), True))
        names = [name for name, _, _ in sources]
        if len(set(names)) != len(names):
            raise CommandError(f"expert names must differ: {names} (name prediction files NAME=PATH)")
        experts = {}
        save = Path(options["save_predictions"]) if options["save_predictions"] else None
        for name, runner, computed in sources:
            self.stderr.write(f"predicting {len(items)} items with {name} …")
            try:
                predictions = runner.predict(items, benchmark.task)
            except Exception as error:
                raise CommandError(f"{name}: {type(error).__name__}: {error}") from None
            finally:
                close_runner(runner)
            experts[name] = {p.uid: None if p.label is None else int(p.label) for p in predictions}
            if save and computed:
                save.mkdir(parents=True, exist_ok=True)
                with (save / f"{name}.jsonl").open("w", encoding="utf-8") as stream:
                    for p in predictions:
                        stream.write(json.dumps(saved_line(p.uid, p.label, p.score, p.categories)) + "\n")
                self.stderr.write(f"  saved {save / f'{name}.jsonl'} (read back with {name}=PATH@llama_guard)")
        return experts


def _guard(reference: str):
    from training.models import GuardModel

    guard = GuardModel.objects.filter(pk=int(reference)).first() if reference.isdigit() else None
    guard = guard or GuardModel.objects.filter(name=reference).first()
    if guard is None:
        raise CommandError(f"no guard model {reference!r}")
    return guard


def summarise(result: online.Simulation, experts: dict, benchmark: str, algorithm: str, seed: int) -> dict:
    """The figures the command prints, as plain JSON."""
    rounds = len(result.items)
    last = rounds - 1
    abstentions = {name: sum(votes.get(item) is None for item in result.items) for name, votes in experts.items()}
    comparator = result.comparator_losses[last] if rounds else [0.0] * len(experts)
    best = int(min(range(len(experts)), key=lambda i: comparator[i])) if rounds else 0
    return {
        "benchmark": benchmark,
        "algorithm": algorithm,
        "eta": result.state.eta,
        "seed": seed,
        "rounds": rounds,
        "experts": [
            {
                "name": name,
                "mistakes": int(result.expert_mistakes[last, i]) if rounds else 0,
                "abstentions": abstentions[name],
                "comparator_loss": float(comparator[i]),
                "final_weight": float(result.weights[last, i]) if rounds else 1 / len(experts),
            }
            for i, name in enumerate(result.experts)
        ],
        "best_expert": result.experts[best],
        "ensemble": {
            "mistakes": int(result.mistakes[last]) if rounds else 0,
            "expected_mistakes": float(result.expected_mistakes[last]) if rounds else 0.0,
            "regret": float(result.regret[last]) if rounds else 0.0,
            "expected_regret": float(result.expected_regret[last]) if rounds else 0.0,
        },
        "bounds": {
            name: {
                "statement": bound.statement,
                "allowed_at_end": float(bound.allowed[last]) if rounds else None,
                "held": bound.held,
            }
            for name, bound in result.bounds.items()
        },  # fmt: skip
    }


def report(summary: dict) -> str:
    eta = "anytime η" if summary["eta"] is None else f"η = {summary['eta']:g}"
    lines = [
        f"{summary['benchmark']}: {summary['rounds']} rounds, {summary['algorithm']} ({eta}), seed {summary['seed']}",
        "",
        f"{'expert':<32} {'mistakes':>9} {'abstained':>9} {'comparator loss':>16} {'final weight':>13}",
    ]
    for expert in summary["experts"]:
        lines.append(
            f"{expert['name'][:32]:<32} {expert['mistakes']:>9} {expert['abstentions']:>9} "
            f"{expert['comparator_loss']:>16.2f} {expert['final_weight']:>13.4f}"
        )
    ensemble = summary["ensemble"]
    lines += [
        f"{'ensemble':<32} {ensemble['mistakes']:>9} {'':>9} {ensemble['expected_mistakes']:>16.2f}",
        "",
        f"best expert in hindsight: {summary['best_expert']}",
        f"regret: {ensemble['regret']:.2f} (expected {ensemble['expected_regret']:.2f})",
    ]
    for name, bound in summary["bounds"].items():
        verdict = "held" if bound["held"] else "VIOLATED"
        allowed = "" if bound["allowed_at_end"] is None else f", allows regret {bound['allowed_at_end']:.2f} at the end"
        lines.append(f"bound {name}: {bound['statement']}: {verdict} at every round{allowed}")
    return "\n".join(lines) + "\n"
