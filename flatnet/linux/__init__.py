"""Executors: thin, idempotent; each owns one external system."""
