from django.core.management.base import BaseCommand, CommandError

from annotation.importing.adapters import ADAPTERS
from annotation.importing.errors import ImportDataError
from annotation.models import Project
from annotation.services import import_samples


class Command(BaseCommand):
    help = "Import samples from JSONL, JSON, CSV or Parquet files (optionally .gz) into a project."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="files to import, each all or nothing")
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--adapter", required=True, choices=sorted(ADAPTERS), help="the source format")
        parser.add_argument("--source", help="source name stored on each sample (default: the adapter's)")
        parser.add_argument(
            "--map-annotators",
            action="store_true",
            help="attribute annotations to existing accounts of the same username (default: imported:<name>)",
        )

    def handle(self, *args, **options):
        try:
            project = Project.objects.get(slug=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {options['project']!r}") from None
        for path in options["files"]:
            try:
                batch = import_samples(
                    project,
                    path,
                    adapter=options["adapter"],
                    source_name=options["source"],
                    map_annotators=options["map_annotators"],
                )
            except ImportDataError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(
                f"{path}: {batch.rows_read} rows read, {batch.created_count} samples added, "
                f"{batch.duplicate_count} repeated rows skipped, {batch.existing_count} already in the project"
            )
