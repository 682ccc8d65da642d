"""The ``corral`` command: a thin translator of argv into operations."""
