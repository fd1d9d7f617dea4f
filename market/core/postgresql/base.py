"""Django's PostgreSQL backend, with a health check that costs no round trip when nothing is wrong.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before the first query of every
request, by running ``SELECT 1``: one more round trip on every request, as many as the whole of a
refused bid's own. An idle connection receives nothing unless the server is closing it (a restart,
``pg_terminate_backend``, an idle timeout: the server sends an error and closes the socket) or, rarely,
has something to tell it (a notice, a changed parameter). So the socket is polled without waiting:
nothing pending on a connection outside any transaction means the server has not closed it, and the
connection is used as it is; anything pending, a transaction left open or failed, or anything
unexpected, and the check is Django's own ``SELECT 1``. A server that vanished without closing
anything (a network partition) is found by neither, until the query times out, as before.

``poll`` rather than ``select``: a server process with a thousand open websockets holds sockets
numbered past ``select``'s limit (1024).
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed:
            return False
        try:
            if connection.info.transaction_status == pq.TransactionStatus.IDLE:
                poller = select.poll()
                poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
                if not poller.poll(0):
                    return True
        except Exception:  # noqa: S110 (no socket any more, or anything unforeseen: ask the server)
            pass
        return super().is_usable()
