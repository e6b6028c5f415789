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
    """An analyst query tried to write; only SELECT-style statements are allowed."""
