"""Errors raised by the store adapters."""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of adapter errors. Operator: check the store named in the message is reachable."""


class KafkaDeliveryError(ConnectorError):
    """A record was not acknowledged by the brokers (acks=all). Nothing was written; retry."""


class TopicSetupError(ConnectorError):
    """A topic could not be created or has the wrong partition count.

    Operator: fix the topic by hand (partition counts cannot shrink) or pick new names.
    """


class ReadOnlyQueryError(ConnectorError):
    """The analyst SQL policy refused a statement before it ran (``connectors/analyst_sql.py``).

    ``reason`` names the rule, e.g. "multiple statements", "table not allowed: accounts".
    Operator: nothing to do; the analyst rewrites the statement.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AnalystQueryError(ConnectorError):
    """ClickHouse could not parse or run a checked analyst statement (syntax, unknown
    column, a limit). The message is short and never carries ClickHouse's own text, which
    can quote data. Operator: nothing to do; the analyst rewrites the statement."""
