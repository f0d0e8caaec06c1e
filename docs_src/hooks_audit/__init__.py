"""Examples of docs/how-to/hooks-and-audit.md."""
