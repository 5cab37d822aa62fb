"""The connection health check without a round trip (core.postgresql): a connection PostgreSQL
ended is replaced before the next request's first query; a healthy one is kept and not queried."""

import select

import psycopg
import pytest
from django.db import close_old_connections, connection


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate(pid: int) -> None:
    """Ends the backend from a connection of its own, and waits (bounded) until our socket sees it."""
    settings = connection.get_connection_params()
    with psycopg.connect(**settings, autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    readable, _, _ = select.select([connection.connection.fileno()], [], [], 30)
    assert readable, "the ended connection's socket never became readable"


def last_query_of(pid: int) -> str:
    settings = connection.get_connection_params()
    with psycopg.connect(**settings, autocommit=True) as other:
        return other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_ended_is_replaced_before_the_next_request(settings):
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    connection.settings_dict["CONN_MAX_AGE"] = 60
    connection.settings_dict["CONN_HEALTH_CHECKS"] = True
    connection.close()
    first = backend_pid()
    close_old_connections()  # what a request's start does
    assert backend_pid() == first  # healthy: kept
    terminate(first)
    assert not connection.is_usable()
    close_old_connections()
    second = backend_pid()  # would raise OperationalError had the dead connection been kept
    assert second != first


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_idle_healthy_connection_is_usable_without_a_query():
    connection.ensure_connection()
    pid = backend_pid()
    assert last_query_of(pid) == "SELECT pg_backend_pid()"
    assert connection.is_usable()
    assert last_query_of(pid) == "SELECT pg_backend_pid()"  # Django's own check would show SELECT 1
