"""Examples of docs/how-to/migrations.md."""
