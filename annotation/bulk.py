"""Fast bulk inserts for imports: COPY on PostgreSQL, executemany on SQLite.

Django's bulk_create spends most of an import compiling SQL value by value; these write
plain tuples instead. Callers run inside ``transaction.atomic()`` (on SQLite that holds the
write lock, since the connection begins transactions IMMEDIATE) and pass JSON as text.
"""

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection
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


def _columns(model: type[Model], fields: Sequence[str]) -> str:
    """The quoted columns of ``fields`` (model field names), in order."""
    return ", ".join(f'"{model._meta.get_field(name).column}"' for name in fields)


def _copy_from_stdin(model: type[Model], fields: Sequence[str]) -> str:
    return f'COPY "{model._meta.db_table}" ({_columns(model, fields)}) FROM STDIN'


def insert_rows(model: type[Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Inserts rows given as tuples in the order of ``fields`` (model field names)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The raw psycopg cursor: wrap its errors as Django's (IntegrityError and so on).
            with connection.wrap_database_errors, cursor.cursor.copy(_copy_from_stdin(model, fields)) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            markers = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f'INSERT INTO "{model._meta.db_table}" ({_columns(model, fields)}) VALUES ({markers})', list(rows)
            )


class RowStream:
    """Rows of one table written as they come: on PostgreSQL one COPY stays open across writes, so
    that the database stores the rows of one chunk while the caller parses the next (closed, the
    COPY would wait for the database after each chunk and the database for the parser before the
    next); on SQLite each write is inserted at once. ``close()`` before any other statement on the
    connection; ``abort()`` on an error ends an open COPY without storing it."""

    def __init__(self, model: type[Model], fields: Sequence[str]):
        self.model, self.fields = model, fields
        self._open: ExitStack | None = None
        self._copy = None

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        if connection.vendor != "postgresql":
            insert_rows(self.model, self.fields, rows)
            return
        if self._open is None:
            self._start_copy()
        with connection.wrap_database_errors:  # as Django's errors, should the database refuse mid-stream
            for row in rows:
                self._copy.write_row(row)

    def close(self) -> None:
        """Ends the COPY: returns once the database has stored every row written (its errors raised here)."""
        if self._open is not None:
            opened, self._open, self._copy = self._open, None, None
            opened.close()

    def abort(self, error: BaseException) -> None:
        if self._open is not None:
            opened, self._open, self._copy = self._open, None, None
            try:
                opened.__exit__(type(error), error, error.__traceback__)
            except DatabaseError:
                pass  # the COPY had failed in the database too; the error being handled says more

    def _start_copy(self) -> None:
        with ExitStack() as opened:
            cursor = opened.enter_context(connection.cursor())
            opened.enter_context(connection.wrap_database_errors)  # Django's errors (IntegrityError, ...)
            self._copy = opened.enter_context(cursor.cursor.copy(_copy_from_stdin(self.model, self.fields)))
            opened.enter_context(connection.execute_wrapper(_refuse_while_copying))
            self._open = opened.pop_all()


def _refuse_while_copying(execute, sql, params, many, context):
    """A statement while a COPY is open would wait on the connection's lock forever: say so instead."""
    raise RuntimeError(f"a COPY is streaming on this connection; close its RowStream before running {sql[:60]!r}")


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
