import fsspec


def read(url: str) -> bytes:
    with fsspec.open(f"simplecache::{url}") as f:
        return f.read()


# read(f"{url}?t=1"), then read(f"{url}?t=2#top"): one download, one cached file.
