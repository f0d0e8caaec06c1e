"""Target options implied by a URL's query string: out of instance identity, into fetches."""

from __future__ import annotations

from typing import Any

__all__ = ["fetch_target", "query_options"]

_MISSING = object()


def query_options(target_cls: Any, url: str) -> dict[str, Any]:
    """Return the options ``target_cls`` derives from the query string of ``url`` alone.

    s3fs and adlfs turn ``?versionId=...`` into ``version_aware=True``. Options a target
    derives from the host or path (an sftp host, a port) are the same with and without
    the query, so they are not returned: they still select another instance.
    """
    if "?" not in url:
        return {}
    protocol = target_cls.protocol
    protocol = protocol if isinstance(protocol, str) else protocol[0]
    # fsspec derives the options from the full URL; a stripped path is given its protocol.
    address = url if "://" in url else f"{protocol}://{url}"
    derived: dict[str, Any] = target_cls._get_kwargs_from_urls(address)
    if not derived:
        return {}
    without_query: dict[str, Any] = target_cls._get_kwargs_from_urls(address.partition("?")[0])
    return {
        name: value for name, value in derived.items() if without_query.get(name, _MISSING) != value
    }


def fetch_target(target: Any, url: str) -> Any:
    """Return the filesystem that fetches ``url``: ``target`` plus the options its query implies.

    The patched filesystem is shared by every variant of a URL, so its own target has
    none of these options; a fetch gets them back, as the unpatched ``simplecache``
    would have had them, through the target class's own instance cache.
    """
    extra = query_options(type(target), url)
    current: dict[str, Any] = target.storage_options
    if all(current.get(name, _MISSING) == value for name, value in extra.items()):
        return target
    return type(target)(*target.storage_args, **{**current, **extra})
