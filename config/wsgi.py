"""WSGI entry point (gunicorn config.wsgi; with --preload the master loads it before forking)."""

import os

from django.core.wsgi import get_wsgi_application

from config.request_modules import load_request_modules
from config.startup_heap import freeze_startup_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
load_request_modules()
freeze_startup_heap()
