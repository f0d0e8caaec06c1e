"""Examples of the tutorial "Starlette and raw ASGI"."""
