"""Examples of the tutorial "Sessions in a plain FastAPI app"."""
