"""Piccolo migrations of the ``shengshitong`` app, applied in order by ``shengshi migrate``."""
