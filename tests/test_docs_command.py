"""``python3 dev.py docs`` serves the documentation site, started for real and read over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx2

from .servers import free_port
from .test_demo_command import demo_process, python3


def test_docs_command_serves_the_site(tmp_path: Path) -> None:
    env = {"PORT": str(free_port())}
    with (
        demo_process([python3(), "dev.py", "docs"], env, tmp_path / "docs.log") as url,
        httpx2.Client(base_url=url, timeout=10) as http,
    ):
        home = http.get("/")
        assert "<title>asgi-kit</title>" in home.text
        assert 'href="tutorial/fastapi-users/"' in home.text  # the front page's way in
        page = http.get("/tutorial/fastapi-users/")
        assert page.status_code == 200
        assert "SessionUserManagerMixin" in page.text  # the complete app, included verbatim
        reference = http.get("/reference/session_manager/")
        assert "SessionManager" in reference.text
        assert http.get("/no-such-page/").status_code == 404
