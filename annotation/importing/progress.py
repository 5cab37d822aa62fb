"""Live progress of a running import, readable by other processes while its transaction is open.

An import writes all its rows in one transaction, so its counts in the database appear only at
the end. The running import also writes the rows it has read to a small file under MEDIA_ROOT
(shared by the web app and the workers), which the console's progress page reads.
"""

import os
from pathlib import Path

from django.conf import settings


def progress_path(batch_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "import-progress" / f"{batch_id}.txt"


def record_progress(batch_id: int, rows_read: int) -> None:
    """Replaces the progress file atomically (a reader never sees half a number)."""
    path = progress_path(batch_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(str(rows_read))
    os.replace(temporary, path)


def read_progress(batch_id: int) -> int | None:
    """Rows read so far by a running import, or None when it has not reported yet."""
    try:
        return int(progress_path(batch_id).read_text())
    except (OSError, ValueError):
        return None


def clear_progress(batch_id: int) -> None:
    progress_path(batch_id).unlink(missing_ok=True)
