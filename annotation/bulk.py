"""Fast bulk inserts for imports: COPY on PostgreSQL, executemany on SQLite.

Django's bulk_create spends most of an import compiling SQL value by value; these write
plain tuples instead. Callers run inside ``transaction.atomic()`` (on SQLite that holds the
write lock, since the connection begins transactions IMMEDIATE) and pass JSON as text.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model


def reserve_ids(model: type[Model], count: int) -> list[int]:
    """Primary keys for ``count`` new rows of ``model``, never used before."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f'SELECT MAX(COALESCE((SELECT MAX(id) FROM "{table}"), 0), '
            f"COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0))",
            [table],
        )
        start = cursor.fetchone()[0] + 1
    return list(range(start, start + count))


def db_datetime(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def insert_rows(model: type[Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Inserts rows given as tuples in the order of ``fields`` (model field names)."""
    table = model._meta.db_table
    columns = ", ".join(f'"{model._meta.get_field(name).column}"' for name in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The raw psycopg cursor: wrap its errors as Django's (IntegrityError and so on).
            with connection.wrap_database_errors, cursor.cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            markers = ", ".join(["%s"] * len(fields))
            cursor.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({markers})', list(rows))


def prefer_indexes() -> None:
    """Inside a bulk write's transaction on PostgreSQL: lookups go through the indexes although the
    planner's statistics, blind to the transaction's own rows, still call the table small."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")


def refresh_planner_statistics(model: type[Model]) -> None:
    """ANALYZE on PostgreSQL, so that the planner knows how many rows a bulk write added (autovacuum
    notices them only a minute or so later; rows of the current transaction it never sees)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f'ANALYZE "{model._meta.db_table}"')
