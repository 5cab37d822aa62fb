"""Two imports racing for the same content: one wins, the other fails cleanly and stores nothing."""

import threading
import time

import pytest
from django.db import connection, transaction

from annotation.importing.errors import ImportDataError
from annotation.importing.records import dialogue
from annotation.models import ImportBatch, Sample
from annotation.services import create_project, import_samples


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_import_fails_cleanly(tmp_path):
    project = create_project(name="Race", slug="race")
    path = tmp_path / "rows.jsonl"
    path.write_text('{"prompt": "first"}\n{"prompt": "contested"}\n', encoding="utf-8")
    holding = threading.Event()

    def rival_import() -> None:
        with transaction.atomic():
            other = tmp_path / "rival.jsonl"
            other.write_text('{"prompt": "contested"}\n', encoding="utf-8")
            import_samples(project, other, adapter="generic", source_name="rival")
            holding.set()
            time.sleep(1.0)  # keep the rival transaction open while the main import inserts
        connection.close()

    rival = threading.Thread(target=rival_import)
    rival.start()
    assert holding.wait(10)
    with pytest.raises(ImportDataError, match="another import stored some of these samples"):
        import_samples(project, path, adapter="generic")
    rival.join()
    assert list(Sample.objects.filter(project=project).values_list("prompt", flat=True)) == ["contested"]
    assert ImportBatch.objects.filter(project=project, status="failed").count() == 1
    assert Sample.objects.get(project=project).turns == dialogue("contested", None)
