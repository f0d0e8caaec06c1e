"""The README's complete FastAPI Users app, as users copy it: one function, two readers.

``tests/test_fastapi_users_wheel.py`` checks that it is ``app.py`` to the letter, and
``benchmarks/load_real_db.py`` serves it (and variants of it). Standard library only: the
benchmark imports it inside ``.venv-fastapi-users``, which has no pytest.
"""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_app_source(readme: Path = README) -> str:
    """The Python block of README.md's "With FastAPI Users" section (without a final newline).

    Raises ``LookupError`` if the section or its block is gone.
    """
    text = readme.read_text()
    try:
        section = text.split("\n## With FastAPI Users\n", 1)[1].split("\n## ", 1)[0]
        return section.split("```python\n", 1)[1].split("\n```", 1)[0]
    except IndexError:
        raise LookupError(
            f"{readme} has no '## With FastAPI Users' section with a python block"
        ) from None
