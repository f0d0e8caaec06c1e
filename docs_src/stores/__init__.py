"""Examples of docs/how-to/stores.md."""
