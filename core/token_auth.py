"""DRF's token authentication with the token and its user read by one plain statement.

Every API request of the labelling loop starts here; DRF's own check builds an ORM query with
``select_related`` each time, which cost more CPU than the rest of a pull. The statement is built
once per process from the user model's fields, so a custom user model works too. Same answers as
DRF's ``TokenAuthentication``: "Invalid token." and "User inactive or deleted.".
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.expressions import Col
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


@cache
def _statement() -> tuple[str, list[str], list[tuple[Col, list]]]:
    """The SELECT of a token's user, the attribute names of its columns in order, and each column's
    converters from the database's value to the model's (as the ORM applies them: aware datetimes
    on SQLite, JSON, ...)."""
    user_model = get_user_model()
    fields = list(user_model._meta.concrete_fields)
    quote = connection.ops.quote_name
    columns = ", ".join(f"u.{quote(field.column)}" for field in fields)
    token_table = quote(Token._meta.db_table)
    user_table = quote(user_model._meta.db_table)
    user_pk = quote(user_model._meta.pk.column)
    token_user = quote(Token._meta.get_field("user").column)
    token_key = quote(Token._meta.get_field("key").column)
    sql = (
        f"SELECT {columns} FROM {token_table} t JOIN {user_table} u ON u.{user_pk} = t.{token_user} "
        f"WHERE t.{token_key} = %s"
    )
    converters = []
    for field in fields:
        column = field.get_col(user_model._meta.db_table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        converters.append((column, found))
    return sql, [field.attname for field in fields], converters


def _converted(row: tuple, converters: list[tuple[Col, list]]) -> list:
    values = list(row)
    for i, (column, found) in enumerate(converters):
        for converter in found:
            values[i] = converter(values[i], column, connection)
    return values


class OneStatementTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, the token and its user read together in one statement."""

    def authenticate_credentials(self, key: str):
        sql, attnames, converters = _statement()
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = get_user_model().from_db(connection.alias, attnames, _converted(row, converters))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)
