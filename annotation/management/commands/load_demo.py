from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import AssignmentBatch, ExportSnapshot, JobStatus, Membership, Project
from annotation.services import create_assignment_batch, create_project, import_samples, run_export, start_export
from annotation.services.work import interleave_sources

# Real rows from ../shared/data: (adapter, path relative to AEGIS_SHARED_DATA).
DEMO_FILES = [
    ("xstest_prompts", "xstest/xstest_prompts.csv"),
    ("simple_safety_tests", "simple_safety_tests/SimpleSafetyTests_test_cases.csv"),
    ("openai_moderation", "openai_moderation/samples-1680.jsonl.gz"),
    ("xstest_completions", "xstest/model_completions/xstest_v2_completions_gpt4.csv"),
    ("hh_rlhf", "hh_rlhf_harmless_base/test.jsonl.gz"),
]
DEMO_BATCH_SOURCES = ["xstest_completions_gpt4", "simple_safety_tests"]
DEMO_ACCOUNTS = [
    ("admin", "aegis-demo-admin", True),
    ("annotator1", "aegis-demo-annotator", False),
    ("annotator2", "aegis-demo-annotator", False),
    ("annotator3", "aegis-demo-annotator", False),
]


class Command(BaseCommand):
    help = "Create demo accounts and a demo project of real rows from ../shared/data (development only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("load_demo makes accounts with known passwords: it runs only with DEBUG on")
        data = settings.AEGIS_SHARED_DATA
        if not data.is_dir():
            raise CommandError(f"demo data not found at {data}: set AEGIS_SHARED_DATA to the shared/data folder")
        users = get_user_model()
        for username, password, staff in DEMO_ACCOUNTS:
            user, _ = users.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = staff
            user.set_password(password)
            user.save()
        project = Project.objects.filter(slug="demo").first() or create_project(
            name="Aegis demo", slug="demo", guidelines="Label the prompt and, where there is one, the response."
        )
        for adapter, relative in DEMO_FILES:
            batch = import_samples(project, data / relative, adapter=adapter)
            self.stdout.write(f"  {relative}: {batch.created_count} added, {batch.existing_count} already there")
        admin = users.objects.get(username="admin")
        for username, _, staff in DEMO_ACCOUNTS:
            if not staff:
                Membership.objects.get_or_create(
                    project=project,
                    user=users.objects.get(username=username),
                    role="annotator",
                    defaults={"break_reminder_minutes": 50},
                )
        if not AssignmentBatch.objects.filter(project=project).exists():
            batch = create_assignment_batch(project, by=admin, name="demo batch", sources=DEMO_BATCH_SOURCES)
            interleave_sources(batch)
            self.stdout.write(
                f"  queued {batch.items.count()} samples for annotation (k = {batch.annotations_per_sample}), "
                f"{' and '.join(DEMO_BATCH_SOURCES)} in turn"
            )
        if not ExportSnapshot.objects.succeeded().filter(project=project).exists():
            export = run_export(start_export(project, created_by=admin))
            if export.status != JobStatus.SUCCEEDED:
                raise CommandError(f"the demo export failed: {export.error}")
            rows = export.manifest["counts"]["train"]["rows"]
            self.stdout.write(f"  exported the imported labels for training (export {export.pk}, {rows} train rows)")
        self.stdout.write(self.style.SUCCESS("Demo accounts (username / password):"))
        for username, password, staff in DEMO_ACCOUNTS:
            self.stdout.write(f"  {username} / {password}{'   (admin)' if staff else ''}")
