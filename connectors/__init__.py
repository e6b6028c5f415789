"""Thin adapters to ClickHouse, Redis and Kafka."""
