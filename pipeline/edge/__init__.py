"""The ingestion edge: what partner SDKs' requests become before the event store."""
