"""Examples of docs/how-to/admins.md."""
