"""Berth's version, importable without pulling in anything else (CLI start-up)."""

BERTH_VERSION = "0.1.0"
