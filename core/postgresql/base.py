"""Django's PostgreSQL backend with a health check that costs no round trip.

With ``conn_health_checks`` Django sends ``SELECT 1`` before the first query of every request,
one more round trip per request on the labelling path. A connection PostgreSQL has ended (a
restart, ``pg_terminate_backend``, an idle timeout) always tells its client first: the server
writes an error message or closes the socket, and either makes the socket readable. An idle
connection that nobody listens on is otherwise never written to. So an idle connection whose
socket has nothing to read is usable, and one that does is closed and replaced, as Django would
after a failed ``SELECT 1``.
"""

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None or self.connection.closed:
            return False
        if self.connection.info.transaction_status != TransactionStatus.IDLE:
            return super().is_usable()  # mid-transaction or in an unknown state: ask the server
        waiting = select.poll()  # not select(): a busy process may hold descriptors past 1024
        waiting.register(self.connection.fileno(), select.POLLIN)
        return not waiting.poll(0)  # data, an error or a hang-up: the server has ended it
