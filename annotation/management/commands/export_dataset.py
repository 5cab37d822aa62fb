import json

from django.core.management.base import BaseCommand, CommandError

from annotation.exporting import EXPORT_FORMATS
from annotation.models import ExportProfile, Project
from annotation.services import export_dataset


class Command(BaseCommand):
    help = (
        "Export a project's samples in the Aegis 2.0 columns, split train/validation/test, with a dataset card "
        "(README.md). Profiles: default, release (the Aegis 2.0 release layout), raw (unlabelled samples too)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--out", help="new folder to write (default: MEDIA_ROOT/exports/<project>/<id>)")
        parser.add_argument(
            "--profile", choices=ExportProfile.values, default=ExportProfile.DEFAULT, help="default, release or raw"
        )
        parser.add_argument(
            "--format",
            action="append",
            choices=EXPORT_FORMATS,
            dest="formats",
            help="repeatable; default all (the release profile writes JSON arrays only)",
        )
        parser.add_argument(
            "--split",
            help="train,validation,test ratios (default 0.9,0.05,0.05; release: the release's 0.886,0.044,0.07)",
        )
        parser.add_argument("--seed", default="aegis", help="split seed")
        parser.add_argument(
            "--source", action="append", dest="sources", help="only samples from this source (repeatable)"
        )
        parser.add_argument(
            "--label-source", action="append", dest="label_sources", help="only labels with this provenance"
        )

    def handle(self, *args, **options):
        try:
            project = Project.objects.get(slug=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {options['project']!r}") from None
        ratios = None
        try:
            if options["split"]:
                ratios = dict(
                    zip(("train", "validation", "test"), (float(x) for x in options["split"].split(",")), strict=True)
                )
        except ValueError:
            raise CommandError(f"--split {options['split']!r}: expected three numbers like 0.9,0.05,0.05") from None
        filters = {key: options[key] for key in ("sources", "label_sources") if options[key]}
        try:
            snapshot = export_dataset(
                project,
                profile=options["profile"],
                formats=options["formats"],
                split_ratios=ratios,
                split_seed=options["seed"],
                filters=filters,
                directory=options["out"],
            )
        except (ValueError, FileExistsError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"exported to {snapshot.directory}")
        self.stdout.write(json.dumps(snapshot.manifest["counts"], indent=2))
        if "left_out" in snapshot.manifest:
            left_out = {reason: entry["rows"] for reason, entry in snapshot.manifest["left_out"].items()}
            self.stdout.write(f"left out (not in the release layout): {json.dumps(left_out)}")
