"""Examples of docs/how-to/account-events.md."""
