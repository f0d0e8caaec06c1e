"""Examples of the concepts pages (docs/concepts/, docs/security.md)."""
