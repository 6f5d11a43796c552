"""The metadata database: the one place that owns persistent state."""

from engine.store.database import MetadataDB
from engine.store.errors import SchemaError, StoreError
from engine.store.schema import Migration

__all__ = ["MetadataDB", "Migration", "SchemaError", "StoreError"]
