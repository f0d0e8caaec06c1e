from __future__ import annotations

import os

from redis.asyncio.cluster import ClusterNode, RedisCluster

from asgi_kit import RedisSessionDatabase

NODES = os.environ.get("SESSIONS_CLUSTER_NODES", "10.0.0.5:7000,10.0.0.6:7000")

nodes = []
for node in NODES.split(","):
    host, _, port = node.rpartition(":")
    nodes.append(ClusterNode(host, int(port)))
client = RedisCluster(startup_nodes=nodes)
# Your client: store.aclose() leaves it open, close it yourself at shutdown.
store = RedisSessionDatabase(client, key_prefix="{myapp}:")
