"""The README's short examples, one per package (tests/test_docs_readme.py runs them)."""
