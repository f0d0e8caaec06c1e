"""The first app of docs/getting-started.md (the README shows it too)."""
