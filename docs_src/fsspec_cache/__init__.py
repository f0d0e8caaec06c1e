"""Examples of docs/how-to/fsspec-cache.md: one simplecache entry per logical file."""
