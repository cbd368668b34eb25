class LangsortError(Exception):
    """An expected failure the CLI reports in one line (exit 2)."""
