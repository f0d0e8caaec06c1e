"""Runnable examples of asgi-kit: the demo app and two minimal integrations."""
