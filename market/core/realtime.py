"""Names of the live groups shared by publishers and consumers.

Every live message goes through ``market.core.fanout``: one Redis publish per group (or, in the
embedded single-process mode, a hand-over to the server's event loop), written by each server
process to the sockets that joined the group there.
"""


def user_group(user_id: int) -> str:
    """A user's own group: only that user's authenticated notification sockets join it."""
    return f"user.{user_id}"
