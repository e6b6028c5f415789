"""Errors raised by the ``deploy`` package (local stack, CLI helpers)."""

from __future__ import annotations


class LocalStackError(Exception):
    """The local Kafka/Redis stack could not be prepared, started or stopped.

    The message says which step failed and carries the tail of the relevant output
    (mvn, apt-get, or the service log under ``<home>/logs``). What an operator should do:
    read that tail; typical fixes are installing Java 17 and Maven (``mvn`` on PATH),
    installing ``redis-server`` (or running as root so it is installed automatically),
    freeing the port named in the message, or running ``streamfold down`` and deleting
    ``<home>`` to start from empty data directories.
    """


class InstallSecretError(Exception):
    """An install secret (e.g. the claims key) is missing and may not be made now.

    What an operator should do: restore the file named in the message from a backup of
    ``<home>``, or set the variable the message names to the value in use.
    """
