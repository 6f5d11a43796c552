"""Data files: seccomp profiles (see README.md for their provenance)."""
