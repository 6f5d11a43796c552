"""Errors of the metadata database layer."""

from __future__ import annotations


class StoreError(Exception):
    """Base of engine.store errors."""


class SchemaError(StoreError):
    """The database's schema is newer than this code, or a migration failed."""
