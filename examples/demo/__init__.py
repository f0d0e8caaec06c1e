"""The asgi-kit demo app (``python3 dev.py demo``); see ``docs/demo.md``."""
