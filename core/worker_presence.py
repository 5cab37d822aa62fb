"""Worker presence on the embedded broker: kombu's SQLAlchemy transport has no broadcast, so a
``ping`` cannot reach its workers; instead each worker touches a file of its own under
AEGIS_WORKER_BEAT_DIR every AEGIS_WORKER_BEAT_SECONDS while it runs, and removes it when it stops."""

import threading
import time
from pathlib import Path

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from .jobs import this_worker

_stop = threading.Event()


def _beat_file() -> Path:
    return Path(settings.AEGIS_WORKER_BEAT_DIR) / this_worker().replace("/", "_")


def live_workers() -> list[str]:
    """The workers whose file was touched within three beats (one killed outright goes stale)."""
    folder = Path(settings.AEGIS_WORKER_BEAT_DIR)
    fresh_after = time.time() - 3 * settings.AEGIS_WORKER_BEAT_SECONDS
    try:
        return sorted(path.name for path in folder.iterdir() if path.stat().st_mtime >= fresh_after)
    except FileNotFoundError:
        return []


def _touch_until_stopped(path: Path) -> None:
    while True:
        path.touch()
        if _stop.wait(settings.AEGIS_WORKER_BEAT_SECONDS):
            return


@worker_ready.connect
def start_beating(**_: object) -> None:
    if not settings.AEGIS_EMBEDDED_BROKER:
        return
    path = _beat_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    _stop.clear()
    threading.Thread(target=_touch_until_stopped, args=(path,), name="worker-presence", daemon=True).start()


@worker_shutdown.connect
def stop_beating(**_: object) -> None:
    if not settings.AEGIS_EMBEDDED_BROKER:
        return
    _stop.set()
    _beat_file().unlink(missing_ok=True)
