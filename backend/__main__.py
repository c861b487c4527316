"""``python -m backend``: the same command line as ``shengshi``."""

from backend.asgi import main

main()
