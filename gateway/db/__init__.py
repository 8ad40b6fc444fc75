"""Persistence: the async engine and session factory, the models, and the migration runner."""
