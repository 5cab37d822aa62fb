import json

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from annotation.services.reports import agreement_report, agreement_rows
from core.csvfiles import CsvWriter


class Command(BaseCommand):
    help = "Print a project's inter-annotator agreement report as JSON or CSV."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", choices=["json", "csv"], default="json")
        parser.add_argument("--bootstrap", type=int, default=200, help="resamples for the 95%% interval of alpha")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {options['project']!r}")
        report = agreement_report(project, bootstrap=options["bootstrap"])
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2, default=str))
        else:
            CsvWriter(self.stdout).writerows(agreement_rows(report))
