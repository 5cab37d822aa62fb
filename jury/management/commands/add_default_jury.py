from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from jury.services import AEGIS2_JURY, JuryError, add_aegis2_jury


class Command(BaseCommand):
    help = "Add the Aegis 2.0 jury (Mixtral-8x22B, Mistral-NeMo-12B, Gemma-2-27B) to a project."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument(
            "--urls",
            default="http://juror-1:8000/v1,http://juror-2:8000/v1,http://juror-3:8000/v1",
            help="one OpenAI-compatible base URL per juror (default: the docker-compose servers)",
        )
        parser.add_argument(
            "--served-names", default="juror-1,juror-2,juror-3", help="model names the servers answer to"
        )

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {options['project']!r}")
        admin = get_user_model().objects.filter(is_superuser=True, is_active=True).first()
        if admin is None:
            raise CommandError("create a superuser first (manage.py createsuperuser)")
        try:
            jurors = add_aegis2_jury(
                project, by=admin, base_urls=options["urls"].split(","), served_names=options["served_names"].split(",")
            )
        except JuryError as error:
            raise CommandError(str(error)) from None
        for juror, (_, published) in zip(jurors, AEGIS2_JURY):
            self.stdout.write(f"{juror.name}: {published} served as {juror.model} at {juror.base_url}")
