"""Examples of docs/how-to/session-cap.md."""
