"""The code examples of the documentation (docs/), each run by the tests (tests/test_docs_*.py)."""
