"""Examples of docs/how-to/reverse-proxy.md."""
