"""No exception or log line of the stores carries a token or its digest.

The failure paths: a duplicate token, driver errors (a missing table), outages (a server
cut off, one that never answers). Each check reads the library's log records of the test (and
every warning) and the whole text of the exception as a traceback prints it, causes included.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from pathlib import Path

import pytest

from asgi_kit import (
    DuplicateSessionError,
    Session,
    SessionDatabase,
    SQLAlchemySessionDatabase,
    StoreUnavailableError,
    generate_token,
)

from .proxy import SilentListener, TcpProxy
from .stores import open_store, server_of, store_behind

pytestmark = pytest.mark.anyio

POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
REDIS = pytest.param("redis", marks=pytest.mark.redis)


def assert_no_secret(
    session: Session, exc: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    # asgi-kit's own records at every level, and anyone's warnings (drivers log their
    # calls at DEBUG: not ours to change).
    records = [r for r in caplog.records if r.name == "asgi_kit" or r.levelno >= logging.WARNING]
    assert any(r.name == "asgi_kit" for r in records) or not isinstance(exc, StoreUnavailableError)
    text = "".join(traceback.format_exception(exc))
    text += "".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)
    assert session.token not in text
    assert session.token_digest not in text


async def unavailable_without_secret(
    store: SessionDatabase, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """A write and the token look-up both raise ``StoreUnavailableError``, without secrets."""
    for call in (
        lambda: store.create(session),
        lambda: store.get_by_token_digest(session.token_digest),
    ):
        with pytest.raises(StoreUnavailableError) as caught:
            await call()
        assert_no_secret(session, caught.value, caplog)


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


@pytest.mark.parametrize("kind", ["sqlite", POSTGRES, REDIS])
async def test_a_duplicate_token(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = Session(user_id=uuid.uuid4(), token=generate_token())
    async with open_store(kind, tmp_path) as store:
        await store.create(session)
        again = Session(user_id=uuid.uuid4(), token=session.token)
        with pytest.raises(DuplicateSessionError) as caught:
            await store.create(again)
    assert_no_secret(session, caught.value, caplog)


@pytest.mark.parametrize("kind", ["sqlite", POSTGRES])
async def test_driver_errors(kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    session = Session(user_id=uuid.uuid4(), token=generate_token())
    async with open_store(kind, tmp_path) as store:
        assert isinstance(store, SQLAlchemySessionDatabase)
        assert store.engine.sync_engine.hide_parameters
        await store.drop_table()
        for call in (
            lambda: store.create(session),
            lambda: store.get_by_token_digest(session.token_digest),
        ):
            with pytest.raises(Exception) as caught:  # noqa: PT011 - any error, its text matters
                await call()
            assert_no_secret(session, caught.value, caplog)
        await store.create_table()


@pytest.mark.parametrize("kind", [POSTGRES, REDIS])
async def test_outages(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    session = Session(user_id=uuid.uuid4(), token=generate_token())
    async with TcpProxy(server_of(kind)) as proxy, store_behind(kind, proxy, wait=0.5) as store:
        await store.create(session)
        for fault in (proxy.cut, proxy.hold):
            await proxy.restore()
            result = fault()
            if result is not None:
                await result
            await unavailable_without_secret(store, session, caplog)


@pytest.mark.parametrize("kind", [POSTGRES, REDIS])
async def test_a_silent_listener(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    from asgi_kit import RedisSessionDatabase

    session = Session(user_id=uuid.uuid4(), token=generate_token())
    async with SilentListener() as listener:
        if kind == "redis":
            store: RedisSessionDatabase | SQLAlchemySessionDatabase = RedisSessionDatabase(
                f"redis://127.0.0.1:{listener.port}/0", timeout=0.3
            )
        else:
            url = f"postgresql://postgres@127.0.0.1:{listener.port}/test"
            store = SQLAlchemySessionDatabase(url, timeout=0.3)
        await unavailable_without_secret(store, session, caplog)
        await store.aclose()
