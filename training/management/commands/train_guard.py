"""Builds a blend from an export snapshot and trains a guard on it, in this process."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import ExportSnapshot
from training.blend import BlendError
from training.services import run_blend, run_training, train_from_export
from training.trainers.common import TrainingError


class Command(BaseCommand):
    help = "Train a guard (MiniLM on CPU, or LoRA on a causal LM) on an export snapshot."

    def add_arguments(self, parser):
        parser.add_argument("--export", type=int, required=True, help="export snapshot id")
        parser.add_argument("--kind", choices=["minilm", "lora"], default="minilm")
        parser.add_argument("--base-model", default="", help="LoRA: Hugging Face id or local path")
        parser.add_argument("--config", default="{}", help='trainer settings as JSON, e.g. {"epochs": 2}')
        parser.add_argument("--blend", default="{}", help='blend options as JSON, e.g. {"no_refusals": true}')

    def handle(self, *args, **options):
        export = ExportSnapshot.objects.filter(pk=options["export"]).first()
        if export is None:
            raise CommandError(f"no export snapshot {options['export']}")
        try:
            config, blend = json.loads(options["config"]), json.loads(options["blend"])
        except json.JSONDecodeError as error:
            raise CommandError(f"--config/--blend must be JSON objects: {error}") from None
        admin = get_user_model().objects.filter(is_staff=True).order_by("pk").first()
        if admin is None:
            raise CommandError("create a staff account first (manage.py createsuperuser)")
        try:
            run = train_from_export(
                export, by=admin, kind=options["kind"], base_model=options["base_model"], config=config,
                blend_options=blend,
            )  # fmt: skip
        except (BlendError, TrainingError) as error:
            raise CommandError(str(error)) from None
        blend = run_blend(run.blend)
        if not blend.succeeded:
            raise CommandError(f"blend {blend.pk} {blend.status}: {blend.error}")
        run.blend = blend
        self.stdout.write(f"blend {run.blend_id}: {json.dumps(run.blend.manifest['counts'])}; training run {run.pk}")
        run = run_training(run)
        if run.status != "succeeded":
            raise CommandError(f"run {run.pk} {run.status}: {run.error}")
        self.stdout.write(json.dumps(run.metrics, indent=2))
        self.stdout.write(f"guard {run.guard.name} at {run.guard.path}")
