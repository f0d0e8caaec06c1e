"""RedisSessionDatabase on a real three-node Redis Cluster: one slot per store, the prefix rule."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from itertools import count

import pytest
import redis.asyncio as aioredis

from asgi_kit import (
    ConfigurationError,
    RedisSessionDatabase,
    Session,
    StoreUnavailableError,
    generate_token,
    utcnow,
)

from .cluster import LocalCluster
from .servers import free_port, unique_name

pytestmark = [pytest.mark.anyio, pytest.mark.redis_cluster]


@pytest.fixture
async def raw(redis_cluster: LocalCluster) -> AsyncIterator[aioredis.RedisCluster]:
    """A plain cluster client, to look at what the stores wrote and where."""
    client = await redis_cluster.client(decode_responses=True).initialize()  # reads the slot map
    yield client
    await client.aclose()


def new(user_id: object = None, **kwargs: object) -> Session:
    user = uuid.uuid4() if user_id is None else user_id
    return Session(user_id=user, token=generate_token(), **kwargs)  # type: ignore[arg-type]


async def keys(raw: aioredis.RedisCluster, store: RedisSessionDatabase) -> set[str]:
    """Every key under the store's prefix, on every master (the prefixes here need no escape)."""
    return {k async for k in raw.scan_iter(match=f"{store.key_prefix}*")}


async def test_every_key_of_a_store_lives_in_the_slot_of_its_prefix(
    raw: aioredis.RedisCluster,
) -> None:
    store = RedisSessionDatabase(raw, key_prefix=f"{{test:{unique_name('slot')}}}:")
    user = "tenant:{x}:{}"  # braces in a user id do not move its keys: the prefix's tag is first
    now = utcnow()
    sessions = [
        new(user),
        new(user, expires_at=now + timedelta(hours=1)),
        new(42, expires_at=now - timedelta(seconds=1)),
        new(idle_timeout=timedelta(minutes=5)),
    ]
    for s in sessions:
        await store.create(s)
    written = await keys(raw, store)
    assert len(written) == 2 * len(sessions) + 3 + 1  # two per session, three users, deadlines
    slot = await raw.cluster_keyslot(store.key_prefix)
    assert {await raw.cluster_keyslot(k) for k in written} == {slot}
    assert await raw.cluster_countkeysinslot(slot) == len(written)  # all on its one node

    assert await store.delete(sessions[0].id) == sessions[0]  # each script finds its node
    assert await store.list_for_user(user) == [sessions[1]]
    assert await store.pop_expired() == [sessions[2]]
    assert await store.delete_for_user(user) == [sessions[1]]
    assert await store.purge_expired(now + timedelta(hours=2)) == 1  # the idle one
    await store.clear()
    assert await keys(raw, store) == set()
    assert await raw.cluster_countkeysinslot(slot) == 0
    await store.aclose()
    assert await raw.ping() is True  # a client given to the store is left open


async def test_stores_on_different_shards_stay_apart(raw: aioredis.RedisCluster) -> None:
    base = unique_name("shard")
    tags = (f"{base}-{i}" for i in count())
    first = next(tags)
    node = raw.get_node_from_key(f"{{{first}}}")
    second = next(t for t in tags if raw.get_node_from_key(f"{{{t}}}") != node)
    stores = [RedisSessionDatabase(raw, key_prefix=f"{{{tag}}}:") for tag in (first, second)]
    s = new()
    for store in stores:
        await store.create(s)  # the same id and token under each prefix: no conflict
    await stores[0].clear()
    assert await keys(raw, stores[0]) == set()
    assert await stores[1].get_by_token_digest(s.token_digest) == s
    assert await stores[1].list_for_user(s.user_id) == [s]
    await stores[1].clear()
    assert await keys(raw, stores[1]) == set()


@pytest.mark.parametrize(
    "prefix", ["sessions:", "{}sessions:", "sessions{:", "app}{x:", "app:{sessions"]
)
def test_a_prefix_without_a_hash_tag_is_refused_on_a_cluster(
    prefix: str, redis_cluster: LocalCluster
) -> None:
    with pytest.raises(ConfigurationError, match="has no hash tag") as refused:
        RedisSessionDatabase(redis_cluster.url, cluster=True, key_prefix=prefix)
    assert 'e.g. "{sessions}:"' in str(refused.value)  # the message gives the fix
    with pytest.raises(ConfigurationError, match="has no hash tag"):
        RedisSessionDatabase(redis_cluster.client(), key_prefix=prefix)
    # A single server takes any prefix: every key is on it anyway.
    RedisSessionDatabase("redis://127.0.0.1:6379/0", key_prefix=prefix)


@pytest.mark.parametrize("prefix", ["{sessions}:", "app:{sessions}:", "{a}{b}:", "{x}"])
def test_a_prefix_with_a_hash_tag_is_accepted(prefix: str, redis_cluster: LocalCluster) -> None:
    assert RedisSessionDatabase(redis_cluster.url, cluster=True, key_prefix=prefix)


async def test_an_unreachable_cluster_raises_store_unavailable() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = RedisSessionDatabase(url, cluster=True, key_prefix="{test:down}:", timeout=1)
    s = new()
    try:
        for call in (
            lambda: store.create(s),
            lambda: store.get_by_token_digest(s.token_digest),
            store.clear,
        ):
            with pytest.raises(StoreUnavailableError):
                await call()
    finally:
        await store.aclose()
