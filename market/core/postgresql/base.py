"""Django's PostgreSQL backend, with a health check that costs no round trip when nothing is wrong.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before the first query of every
request, by running ``SELECT 1``: one more round trip on every request, as many as the whole of a
refused bid's own. An idle connection receives nothing unless the server is closing it (a restart,
``pg_terminate_backend``, an idle timeout: the server sends an error and closes the socket) or, rarely,
has something to tell it (a notice, a changed parameter). So the socket is polled without waiting:
nothing pending means the server has not closed it, and the connection is used as it is; anything
pending, and the check is Django's own ``SELECT 1``, which reads it. A server that vanished without
closing anything (a network partition) is found by neither, until the query times out, as before.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):  # no socket any more
            return False
        return not readable or super().is_usable()
