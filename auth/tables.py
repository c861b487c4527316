"""Identity tables (filled in by the identity issue)."""

TABLES: list[type] = []
