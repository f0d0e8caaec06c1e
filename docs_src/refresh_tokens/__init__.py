"""Examples of docs/how-to/refresh-tokens.md: short-lived access tokens and refresh tokens."""
