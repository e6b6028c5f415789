"""FastAPI application: command routes produce, query routes read read models."""
