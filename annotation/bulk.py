"""Fast bulk inserts for imports: COPY on PostgreSQL, executemany on SQLite.

Django's bulk_create spends most of an import compiling SQL value by value; these write
plain tuples instead. Callers run inside ``transaction.atomic()`` (on SQLite that holds the
write lock, since the connection begins transactions IMMEDIATE) and pass JSON as text.
"""

from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, connection
from django.db.models import Model


def reserve_ids(model: type[Model], count: int) -> list[int]:
    """Primary keys for ``count`` new rows of ``model``, never used before."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The sequence named once (an init plan): per row, finding it cost ten times the nextval.
            cursor.execute(
                "SELECT nextval((SELECT pg_get_serial_sequence(%s, 'id'))::regclass) FROM generate_series(1, %s)",
                [table, count],
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
    connection; ``abort()`` on an error ends an open COPY without storing it.

    ``constant_references`` ({foreign key field: primary key}) names the one row each of the rows'
    foreign keys points to. When it covers every foreign key the rows set, and the role may (a
    superuser, or one granted SET ON PARAMETER session_replication_role), the foreign keys are
    checked once, not row by row: the referenced rows are locked as a foreign-key check locks them
    (FOR KEY SHARE, so they cannot be deleted before the commit) and every row is checked to point
    at them; the COPY then runs with ``session_replication_role = replica`` (as ``pg_restore
    --disable-triggers`` does), which skips the per-row check triggers, 70,000 of them at the
    commit of a 35,000-sample import, and with them the table's own triggers: the caller accounts
    for those (an import defers the samples' search documents)."""

    def __init__(
        self, model: type[Model], fields: Sequence[str], *, constant_references: Mapping[str, int] | None = None
    ):
        self.model, self.fields = model, fields
        self.references = [(fields.index(name), name, pk) for name, pk in (constant_references or {}).items()]
        self._open: ExitStack | None = None
        self._copy = None
        self._role_before: str | None = None  # the replication role to restore when the COPY ends
        self._checked_once: bool | None = None  # decided when the first COPY opens

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        if connection.vendor != "postgresql":
            insert_rows(self.model, self.fields, rows)
            return
        if self._open is None:
            self._start_copy()
        references = self.references if self._checked_once else ()
        with connection.wrap_database_errors:  # as Django's errors, should the database refuse mid-stream
            for row in rows:
                for index, name, pk in references:
                    if row[index] != pk:
                        raise ValueError(f"{self.model.__name__}.{name} is {row[index]!r}, not the {pk} checked")
                self._copy.write_row(row)

    def close(self) -> None:
        """Ends the COPY: returns once the database has stored every row written (its errors raised here)."""
        if self._open is not None:
            opened, self._open, self._copy = self._open, None, None
            opened.close()
            if self._role_before is not None:
                _set_replication_role(self._role_before)
                self._role_before = None

    def abort(self, error: BaseException) -> None:
        """Ends an open COPY unstored (the role it set ends with the failing transaction)."""
        if self._open is not None:
            opened, self._open, self._copy = self._open, None, None
            try:
                opened.__exit__(type(error), error, error.__traceback__)
            except DatabaseError:
                pass  # the COPY had failed in the database too; the error being handled says more

    def _start_copy(self) -> None:
        if self._checked_once is None:
            self._checked_once = self._check_references_once()
        if self._checked_once:
            self._role_before = _set_replication_role("replica")
        with ExitStack() as opened:
            cursor = opened.enter_context(connection.cursor())
            opened.enter_context(connection.wrap_database_errors)  # Django's errors (IntegrityError, ...)
            self._copy = opened.enter_context(cursor.cursor.copy(_copy_from_stdin(self.model, self.fields)))
            opened.enter_context(connection.execute_wrapper(_refuse_while_copying))
            self._open = opened.pop_all()

    def _check_references_once(self) -> bool:
        """Locks the referenced rows when the stream may skip the per-row checks; says whether it may."""
        foreign_keys = {
            field.name
            for field in self.model._meta.concrete_fields
            if field.name in self.fields and field.is_relation and field.db_constraint
        }
        if not foreign_keys <= {name for _, name, _ in self.references} or not _may_skip_triggers():
            return False
        with connection.cursor() as cursor:
            for _, name, pk in self.references:
                target = self.model._meta.get_field(name).target_field
                table, column = target.model._meta.db_table, target.column
                cursor.execute(f'SELECT 1 FROM "{table}" WHERE "{column}" = %s FOR KEY SHARE', [pk])
                if cursor.fetchone() is None:
                    raise IntegrityError(f"{self.model.__name__}.{name}: no {target.model.__name__} {pk}")
        return True


def _may_skip_triggers() -> bool:
    """Whether this connection's role may set session_replication_role (PostgreSQL 15 can grant it)."""
    granted = (
        "has_parameter_privilege('session_replication_role', 'SET')" if connection.pg_version >= 150000 else "FALSE"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT current_setting('is_superuser') = 'on' OR {granted}")
        return cursor.fetchone()[0]


def _set_replication_role(role: str) -> str:
    """Sets it for the rest of the transaction; returns the role it replaced."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('session_replication_role'), set_config('session_replication_role', %s, true)",
            [role],
        )
        return cursor.fetchone()[0]


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
