"""Every code example of the docs and the README is a file that the tests run.

The site (mkdocs.yml, docs/) shows examples only by including files verbatim
(``--8<-- "docs_src/..."``, pymdownx.snippets); the README, read on GitHub where nothing
is included, repeats a file's text under a ``<!-- docs_src/... -->`` marker, checked equal
here. The files themselves are run by ``tests/test_docs_*.py`` (and the complete FastAPI
Users app by ``test_fastapi_users_wheel.py``); ``python3 dev.py test`` builds the site with
``mkdocs build --strict``, so a broken link, anchor or API reference fails the run too.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import metadata
from pathlib import Path

import pytest

import dev

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
INCLUDE = re.compile(r'^--8<-- "([^":]+)(?::[^"]*)?"$')
FENCE = re.compile(r"^(\s*)(```+)(\S*)\s*$")
MARKER = re.compile(r"^<!-- ((?:docs_src|examples)/\S+) -->$")
#: Shell blocks are commands, not examples: checked below against what they name.
COMMANDS = {"sh", "console"}
#: Only the upgrade guide shows SQL; tests/test_sql_upgrade.py runs every statement of it.
SQL_PAGES = {DOCS / "upgrading.md"}
#: Where included files may live: the examples run by the tests.
EXAMPLE_DIRS = ("docs_src/", "examples/")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    page: Path
    line: int
    language: str
    body: list[str]
    before: list[str]

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> Iterator[Block]:
    """The fenced code blocks of ``page``, with the lines before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, ticks, language = opening.groups()
        end = index + 1
        while end < len(lines) and lines[end].strip() != ticks:
            end += 1
        body = [line.removeprefix(indent) for line in lines[index + 1 : end]]
        yield Block(page, index + 1, language, body, lines[max(0, index - 2) : index])
        index = end + 1


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def included(block: Block) -> list[str]:
    """The files a docs block includes; fails unless the block is nothing but includes."""
    paths = []
    for line in block.body:
        if not line.strip():
            continue
        found = INCLUDE.match(line.strip())
        assert found, (
            f"{block.where()}: a {block.language or 'plain'} block must include a file that the "
            f"tests run (--8<-- \"docs_src/...\"), not show code of its own: {line!r}"
        )
        paths.append(found.group(1))
    assert paths, f"{block.where()}: an empty code block"
    return paths


def test_every_docs_example_is_an_included_file() -> None:
    seen = 0
    for page in pages():
        for block in blocks(page):
            assert block.language, f"{block.where()}: a code block needs a language"
            if block.language in COMMANDS:
                continue
            if block.language == "sql":
                assert page in SQL_PAGES, f"{block.where()}: SQL belongs in docs/upgrading.md"
                continue
            for path in included(block):
                assert path.startswith(EXAMPLE_DIRS), f"{block.where()}: {path} is not an example"
                assert (ROOT / path).is_file(), f"{block.where()}: {path} does not exist"
                seen += 1
    assert seen >= 20, "the docs lost their examples"


def readme_examples() -> list[tuple[Block, str]]:
    examples = []
    for block in blocks(README):
        if block.language in COMMANDS:
            continue
        markers = [m.group(1) for line in block.before if (m := MARKER.match(line.strip()))]
        assert markers, f"{block.where()}: mark the file this block shows (<!-- docs_src/... -->)"
        examples.append((block, markers[-1]))
    return examples


def test_the_readme_examples_are_the_tested_files() -> None:
    examples = readme_examples()
    assert len(examples) >= 3, "the README shows one example per package"
    for block, path in examples:
        shown = "\n".join(block.body).strip("\n")
        assert shown == (ROOT / path).read_text(encoding="utf-8").strip("\n"), (
            f"{block.where()} differs from {path}: copy the file into the README"
        )


def example_files() -> list[Path]:
    return sorted(p for p in (ROOT / "docs_src").rglob("*") if p.is_file() and is_example(p))


def is_example(path: Path) -> bool:
    return path.name != "__init__.py" and "__pycache__" not in path.parts


def test_every_example_file_is_shown_and_run() -> None:
    code = [b for page in pages() for b in blocks(page) if b.language not in COMMANDS | {"sql"}]
    shown = {path for block in code for path in included(block)}
    shown |= {path for _, path in readme_examples()}
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    files = example_files()
    assert files, "docs_src/ is empty"
    for file in files:
        relative = file.relative_to(ROOT).as_posix()
        assert relative in shown, f"{relative} is shown nowhere in the docs"
        module = relative.removesuffix(".py").replace("/", ".")
        assert relative in tests or module in tests, f"no test runs {relative}"


def test_the_complete_fastapi_users_app_is_shown_verbatim() -> None:
    page = DOCS / "tutorial" / "fastapi-users.md"
    shown = [path for b in blocks(page) if b.language == "python" for path in included(b)]
    assert "examples/fastapi_users_app.py" in shown


EXTRAS = set(metadata("asgi-kit").get_all("Provides-Extra") or ())


def commands() -> Iterator[tuple[Block, list[str]]]:
    for page in [README, *pages()]:
        for block in blocks(page):
            if block.language in COMMANDS:
                for line in block.body:
                    text = line.split(" #", 1)[0].strip().removeprefix("$ ")
                    if text and not text.endswith("\\"):
                        yield block, shlex.split(text)


def test_the_commands_name_what_exists() -> None:
    """``python3 dev.py <task>``, the extras of ``pip install`` and the files named exist."""
    tasks = []
    for block, words in commands():
        if words[:2] == ["python3", "dev.py"]:
            assert words[2] in dev.TASKS, f"{block.where()}: no task {words[2]!r} in dev.py"
            tasks.append(words[2])
        for word in words:
            for extras in re.findall(r"asgi-kit\[([\w,-]+)\]", word):
                unknown = set(extras.split(",")) - EXTRAS
                assert not unknown, f"{block.where()}: no extra {unknown} in pyproject.toml"
            if re.match(r"^(benchmarks|examples|docs_src|tests)/\S+\.py$", word):
                assert (ROOT / word).is_file(), f"{block.where()}: {word} does not exist"
    assert {"demo", "test", "docs"} <= set(tasks)


@pytest.mark.parametrize("page", [README], ids=["README.md"])
def test_the_readme_is_a_front_page(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines: move detail into docs/"
    assert lines[0] == "# asgi-kit"
