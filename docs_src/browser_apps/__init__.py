"""Examples of docs/how-to/browser-apps.md: the session token in an HttpOnly cookie."""
