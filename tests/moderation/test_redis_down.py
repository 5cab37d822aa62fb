"""The moderation API while Redis (its rate-limit store) is down: 503 with a message, not 500."""

import socket

import pytest

from moderation.models import Decision
from tests.moderation.test_api import ask, token_client

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_moderation_answers_503_while_redis_is_down(client, settings, keyword_ensemble, staff):
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        },
    }
    response = ask(token_client(client, staff), "a bomb")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("Redis is unreachable") and response["Retry-After"] == "30"
    assert Decision.objects.count() == 0
