"""fsspec's own ``simplecache`` contract, held by the patched class.

The simplecache behaviours that fsspec checks in
``fsspec/implementations/tests/test_cached.py`` and that the patch keeps, through the
public API. Those tested elsewhere already are not repeated here:

- ``fs.open`` in "wb", "ab" and "r+b" (at offset 0), ``pipe``, a failed upload:
  test_filesystem.py::test_write_through_uploads_and_updates_the_entry and
  ::test_failed_upload_keeps_the_old_entry
- transactions, committed and rolled back, reading one's own writes:
  test_filesystem.py::test_transactions_commit_and_roll_back
- ``open_files`` "wb" of a list of URLs, ``open_local`` into the cache directory:
  test_filesystem.py::test_open_files_and_open_local
- ``same_names=True`` (the entry named by the basename), ``cache_mapper=``:
  test_filesystem.py::test_same_names_and_own_mapper
- ``compression="gzip"`` and ``"infer"`` given to simplecache:
  test_filesystem.py::test_compression_on_download
- a read-only first storage read and never written, new entries in the last one:
  test_filesystem.py::test_read_only_storage_is_used_and_never_written
- ``pop_from_cache`` of a URL variant, ``clear_cache``, ``clear_expired_cache(0)``:
  test_filesystem.py::test_pop_clear_and_expire
- ``clear_expired_cache(expiry)``: unused for longer removed, used since kept, ``None``
  or a negative expiry raise ``ValueError``:
  test_directory.py::test_expiry_counts_from_the_last_use
- ``cat`` of a list, of a "*" glob, recursive, ``on_error``: test_filesystem.py::test_cat_forms
- ``cat_file``, ``cat_ranges``, awaiting ``_cat_file`` and ``_cat_ranges``:
  test_filesystem.py::test_cat_file_ranges_and_async
- ``fs=`` an explicit target instance, one instance per target instance:
  test_filesystem.py::test_explicit_target_instance_is_honoured
- pickling gives the shared instance back:
  test_filesystem.py::test_pickle_returns_the_shared_instance
- the class's ``_strip_protocol``:
  test_filesystem.py::test_strip_protocol_keeps_trailing_slashes_of_urls
- a cache directory that does not exist yet is made: every test on the ``cache_dir``
  fixture; one deleted under the cache is made again:
  test_bad_directories.py::test_a_deleted_directory_is_made_again_and_read_fresh
- ``clear_instance_cache()`` (either class's name) makes new instances, on a new empty
  temporary directory, read fresh with ``cat``:
  test_temporary.py::test_a_cleared_instance_cache_starts_an_empty_temporary_directory
- the old temporary directory goes with its last instance; one made with
  ``skip_instance_cache=True`` goes when that instance is collected:
  test_temporary.py::test_the_old_directory_goes_with_its_last_instance and
  ::test_an_uncached_instance_has_its_own_directory_and_removes_it
- an explicit ``cache_storage`` is shared across cleared instance caches, and
  ``pop_from_cache`` then gives fresh bytes:
  test_temporary.py::test_an_explicit_directory_is_shared_across_generations

Documented departures from fsspec, whose fsspec expectation is not tested: ``pop_from_cache``
really removes the entry (``cache_size()`` drops; fsspec's simplecache test expects it
unchanged), one instance per logical file (fsspec: one for every path) and one instance
shared by all threads.
"""

from __future__ import annotations

import gc
import inspect
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import fsspec
import pytest
from cache_helpers import entries
from fsspec.compression import compr
from fsspec.implementations.cached import LocalTempFile, SimpleCacheFileSystem
from fsspec.implementations.local import LocalFileSystem

from fsspec_patch import CanonicalSimpleCacheFileSystem


def read_through_cache(url: str, **options: Any) -> bytes:
    """Read ``simplecache::<url>`` whole through ``fsspec.open``."""
    with fsspec.open(f"simplecache::{url}", "rb", **options) as f:
        data: bytes = f.read()
    return data


def in_mode(data: bytes, mode: str) -> str | bytes:
    """Return ``data`` as text for a text ``mode``, as bytes for a binary one."""
    return data if "b" in mode else data.decode()


def open_with_default_storage(via: str, path: str, mode: str = "rb") -> Any:
    """Open memory ``path`` through simplecache on its default temporary storage.

    ``via`` is ``"fsspec.open"`` (an instance for the URL) or ``"fsspec.filesystem"`` (an
    instance for the options alone).
    """
    if via == "fsspec.open":
        return fsspec.open(f"simplecache::memory://{path}", mode).open()
    return fsspec.filesystem("simplecache", target_protocol="memory").open(path, mode)


# -- writes ------------------------------------------------------------------------------


def test_open_files_writes_each_name_of_a_pattern_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    out, cache = tmp_path / "out", str(tmp_path / "cache")
    out.mkdir()
    written = []
    opened = fsspec.open_files(
        f"simplecache::file://{out}/*.out", "wb", num=2, simplecache={"cache_storage": cache}
    )
    with opened as files:
        for i, f in enumerate(files):
            assert isinstance(f, LocalTempFile)
            assert not f.name.startswith(str(out))  # a local file, not the target
            f.write(b"data%d" % i)
            written.append(f.name)
        assert os.listdir(out) == []  # nothing is uploaded before the commit
    assert sorted(os.listdir(out)) == ["0.out", "1.out"]
    assert [(out / name).read_bytes() for name in ("0.out", "1.out")] == [b"data0", b"data1"]
    assert not [name for name in written if os.path.exists(name)]
    assert len(entries(cache)) == 2  # the two entries, and no temporary file beside them


@pytest.mark.parametrize("mode", ["a", "ab"])
def test_append_through_fsspec_open(memfs: Any, mem_root: str, cache_dir: str, mode: str) -> None:
    path = f"{mem_root}/afile"
    memfs.pipe(path, b"hello")
    with fsspec.open(f"simplecache::memory://{path}", mode, cache_storage=cache_dir) as f:
        assert isinstance(f if "b" in mode else f.buffer, LocalTempFile)
        f.write(in_mode(b"world", mode))
    assert memfs.cat(path) == b"helloworld"
    assert read_through_cache(f"memory://{path}", cache_storage=cache_dir) == b"helloworld"


@pytest.mark.parametrize("mode", ["r+", "r+b"])
def test_update_through_fsspec_open_seeks_and_overwrites(
    memfs: Any, mem_root: str, cache_dir: str, mode: str
) -> None:
    path = f"{mem_root}/afile"
    memfs.pipe(path, b"hello")
    with fsspec.open(f"simplecache::memory://{path}", mode, cache_storage=cache_dir) as f:
        assert isinstance(f if "b" in mode else f.buffer, LocalTempFile)
        assert f.read() == in_mode(b"hello", mode)
        f.seek(1)
        f.write(in_mode(b"world", mode))
    assert memfs.cat(path) == b"hworld"
    assert read_through_cache(f"memory://{path}", cache_storage=cache_dir) == b"hworld"


def test_a_transaction_lists_the_files_it_has_not_uploaded_yet(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    fs, root = fsspec.url_to_fs(f"simplecache::memory://{mem_root}", cache_storage=cache_dir)
    assert root == mem_root
    with fs.transaction:
        fs.pipe(f"{root}/myfile", b"1")
        fs.pipe(f"{root}/deep/dir/otherfile", b"333")
        with fs.open(f"{root}/written", "wb") as f:
            f.write(b"ff")
        assert memfs.find(root) == []
        assert fs.info(f"{root}/deep/dir/otherfile")["size"] == 3
        assert fs.info(f"{root}/deep")["type"] == "directory"
        assert fs.isdir(f"{root}/deep")
        assert fs.ls(f"{root}/deep", detail=False) == [f"{root}/deep/dir"]
    assert memfs.cat(memfs.find(root)) == {
        f"{root}/deep/dir/otherfile": b"333",
        f"{root}/myfile": b"1",
        f"{root}/written": b"ff",
    }


# -- sizes and removal -------------------------------------------------------------------


def test_cache_size_counts_the_entries_until_popped_or_cleared(tmp_path: Path) -> None:
    source = tmp_path / "afile"
    source.write_bytes(b"test")
    fs = fsspec.filesystem("simplecache", target_protocol="file")  # temporary storage
    assert fs.cache_size() == 0
    with fs.open(str(source), "rb") as f:
        assert f.read(5) == b"test"
    assert fs.cache_size() == 4
    fs.pop_from_cache(str(source))
    assert fs.cache_size() == 0  # a documented departure: the entry is really gone
    fs.pop_from_cache(str(tmp_path / "never-cached"))  # nothing to remove is no error
    assert fs.cat(str(source)) == b"test"
    assert fs.cache_size() == 4
    fs.clear_cache()
    assert fs.cache_size() == 0
    assert entries(fs.storage[-1]) == []


def test_clear_expired_cache_changes_only_the_writable_storage(
    memfs: Any, mem_root: str, tmp_path: Path
) -> None:
    memfs.pipe({f"{mem_root}/{name}": name.encode() for name in ("a", "b", "c")})
    first, last = str(tmp_path / "first"), str(tmp_path / "last")

    def make(storage: str | list[str]) -> Any:
        return fsspec.filesystem(
            "simplecache", target_protocol="memory", cache_storage=storage, same_names=True
        )

    make(first).cat(f"{mem_root}/a")
    fs = make([first, last])
    fs.cat([f"{mem_root}/b", f"{mem_root}/c"])
    assert (entries(first), entries(last)) == (["a"], ["b", "c"])
    two_hours_ago = Path(first, "a").stat().st_mtime - 7200
    for old in (Path(first, "a"), Path(last, "b")):
        os.utime(old, (two_hours_ago, two_hours_ago))
    fs.clear_expired_cache(3600)
    assert (entries(first), entries(last)) == (["a"], ["c"])
    assert fs.cat(f"{mem_root}/b") == b"b"
    assert entries(last) == ["b", "c"]


def test_an_explicit_cache_directory_outlives_its_uncached_instance(tmp_path: Path) -> None:
    source = tmp_path / "afile"
    source.write_bytes(b"test")
    directory = str(tmp_path / "cache")
    fs = fsspec.filesystem(
        "simplecache",
        target_protocol="file",
        cache_storage=directory,
        skip_instance_cache=True,  # no shared instance keeps it alive
    )
    with fs.open(str(source), "rb") as f:
        assert f.read(5) == b"test"
    del fs
    gc.collect()
    # Only a temporary directory goes with its instance (test_temporary.py).
    assert len(entries(directory)) == 1


# -- ways to name the target -------------------------------------------------------------


def test_fo_selects_the_instance_that_fsspec_open_uses(
    memfs: Any, mem_root: str, cache_dir: str
) -> None:
    memfs.pipe(f"{mem_root}/afile", b"data")
    opened = fsspec.open(f"simplecache::memory://{mem_root}/afile", cache_storage=cache_dir)
    # fsspec.open passes the target's path as ``fo``; so does a direct call.
    fs = fsspec.filesystem(
        "simplecache", target_protocol="memory", fo=f"{mem_root}/afile", cache_storage=cache_dir
    )
    assert fs is opened.fs
    with opened as f:
        assert f.read() == b"data"
    assert fs.cat(f"{mem_root}/afile") == b"data"
    assert len(entries(cache_dir)) == 1


# "file" as a member name once confused fsspec's parsing of chained URLs.
@pytest.mark.parametrize("member", ["test", "file"])
def test_simplecache_inside_a_chain_caches_the_archive(tmp_path: Path, member: str) -> None:
    archive = tmp_path / f"{member}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(member, b"hello")
    cache = str(tmp_path / "cache")
    url = f"zip://{member}::simplecache::file://{archive}"
    with fsspec.open_files(url, simplecache={"cache_storage": cache}) as files:
        assert files[0].read() == b"hello"
    assert [Path(cache, name).read_bytes() for name in entries(cache)] == [archive.read_bytes()]


def test_target_options_build_the_target_and_select_the_instance(tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")

    def make(auto_mkdir: bool) -> Any:
        return fsspec.filesystem(
            "simplecache",
            target_protocol="file",
            target_options={"auto_mkdir": auto_mkdir},
            cache_storage=cache,
        )

    fs = make(True)
    assert fs.fs.auto_mkdir is True
    assert make(True) is fs
    other = make(False)
    assert other is not fs
    assert other.fs.auto_mkdir is False
    deep = tmp_path / "new" / "deeper" / "f"
    with fs.open(str(deep), "wb") as f:
        f.write(b"x")
    assert deep.read_bytes() == b"x"
    # The chained form: options of the target's protocol, by its name.
    deeper = tmp_path / "other" / "deeper" / "g"
    options = {"file": {"auto_mkdir": True}, "simplecache": {"cache_storage": cache}}
    with fsspec.open(f"simplecache::file://{deeper}", "wb", **options) as f:
        f.write(b"y")
    assert deeper.read_bytes() == b"y"


def test_glob_and_cat_of_several_files_over_an_explicit_target(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "out").write_bytes(b"test")
    (source / "out2").write_bytes(b"test2")
    cache = str(tmp_path / "cache")
    fs = fsspec.filesystem("simplecache", fs=LocalFileSystem(), cache_storage=cache)
    assert fs.glob(f"{source}/wrong*") == []
    assert fs.glob(f"{source}/ou*") == [f"{source}/out", f"{source}/out2"]
    assert fs.cat(f"{source}/ou*") == {f"{source}/out": b"test", f"{source}/out2": b"test2"}
    assert len(entries(cache)) == 2
    assert fsspec.AbstractFileSystem.from_json(fs.to_json()) is fs


def test_glob_url_opens_every_match_by_its_basename(
    memfs: Any, mem_root: str, tmp_path: Path
) -> None:
    names = ["file0", "file1"]
    memfs.pipe({f"{mem_root}/{name}": b"hello" for name in names})
    url = f"simplecache::memory://{mem_root}/file*"
    first = str(tmp_path / "first")
    local = fsspec.open_local(url, simplecache={"cache_storage": first, "same_names": True})
    assert sorted(local) == [os.path.join(first, name) for name in names]
    assert [Path(path).read_bytes() for path in local] == [b"hello", b"hello"]
    opened = fsspec.open_files(
        url, "rb", simplecache={"cache_storage": str(tmp_path / "second"), "same_names": True}
    )
    with opened as files:
        assert sorted(os.path.basename(f.name) for f in files) == names
        assert [f.read() for f in files] == [b"hello", b"hello"]
    memfs.rm([f"{mem_root}/{name}" for name in names])
    with opened as files:  # the target files are gone: the cache serves them
        assert [f.read() for f in files] == [b"hello", b"hello"]


@pytest.mark.parametrize("toplevel", [True, False])
def test_get_mapper_reads_through_the_cache(tmp_path: Path, toplevel: bool) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "afile").write_bytes(b"test data")
    cache = str(tmp_path / "cache")
    if toplevel:
        url = f"simplecache::file://{source}"
        mapper = fsspec.get_mapper(url, simplecache={"cache_storage": cache})
    else:
        fs = fsspec.filesystem("simplecache", target_protocol="file", cache_storage=cache)
        mapper = fs.get_mapper(str(source))
    assert mapper["afile"] == b"test data"
    assert len(entries(cache)) == 1
    (source / "afile").write_bytes(b"changed")
    assert mapper["afile"] == b"test data"  # the cached copy
    assert mapper.getitems(["afile", "bfile"], on_error="omit") == {"afile": b"test data"}
    with pytest.raises(KeyError):
        mapper["bfile"]
    assert len(entries(cache)) == 1


def test_an_instance_strips_both_protocols_down_to_the_target_path() -> None:
    fs = fsspec.filesystem("simplecache", target_protocol="memory")
    for url in ("memory://afile", "simplecache://afile", "simplecache::memory://afile"):
        assert fs._strip_protocol(url) == "/afile", url


# -- compression, storages, permissions, class ---------------------------------------------


@pytest.mark.parametrize("codec", ["gzip", "bz2"])
def test_compressed_files_read_through_the_cache(tmp_path: Path, codec: str) -> None:
    source = tmp_path / "data"
    with open(source, "wb") as raw, compr[codec](raw, mode="wb") as packed:
        packed.write(b"123456789")
    url = f"simplecache::{source}"
    # Given to fsspec.open: the cache keeps the compressed file, decompressed on reading.
    packed_cache = str(tmp_path / "packed")
    options = {"same_names": True, "cache_storage": packed_cache}
    with fsspec.open(url, "rb", compression=codec, simplecache=options) as f:
        assert f.read() == b"123456789"
    assert Path(packed_cache, "data").read_bytes() == source.read_bytes()
    # Given to simplecache: decompressed on download, the cache keeps the plain bytes.
    plain_cache = str(tmp_path / "plain")
    options = {"same_names": True, "compression": codec, "cache_storage": plain_cache}
    with fsspec.open(url, "rb", simplecache=options) as f:
        assert f.read() == b"123456789"
    assert Path(plain_cache, "data").read_bytes() == b"123456789"


def test_the_first_storage_holding_a_file_is_read_first(tmp_path: Path) -> None:
    source = tmp_path / "afile"
    source.write_bytes(b"test data")
    first, last = str(tmp_path / "first"), str(tmp_path / "last")

    def make(storage: str | list[str]) -> Any:
        return fsspec.filesystem("simplecache", target_protocol="file", cache_storage=storage)

    assert make(first).cat(str(source)) == b"test data"
    source.write_bytes(b"test data" * 2)
    assert make(last).cat(str(source)) == b"test data" * 2
    assert entries(first) == entries(last)  # one name, two different contents
    both = make([first, last])
    assert both.cat(str(source)) == b"test data"
    (tmp_path / "bfile").write_bytes(b"new")
    assert both.cat(str(tmp_path / "bfile")) == b"new"
    assert (len(entries(first)), len(entries(last))) == (1, 2)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize(("mode", "expected"), [(0o700, 0o700), (0o750, 0o750), (None, 0o755)])
def test_cache_storage_mode_sets_the_permissions_of_the_new_directory(
    tmp_path: Path, mode: int | None, expected: int
) -> None:
    cache = tmp_path / "cache"
    previous = os.umask(0o022)
    try:
        fsspec.filesystem(
            "simplecache",
            target_protocol="file",
            cache_storage=str(cache),
            cache_storage_mode=mode,
        )
    finally:
        os.umask(previous)
    # The tests run as root, for whom access() allows everything: read the mode bits.
    assert oct(stat.S_IMODE(os.stat(cache).st_mode)) == oct(expected)


def test_equality_hash_and_str(tmp_path: Path) -> None:
    local = LocalFileSystem()

    def make(name: str, **options: Any) -> Any:
        return fsspec.filesystem(
            "simplecache", fs=local, cache_storage=str(tmp_path / name), **options
        )

    raspberry, banana = make("raspberry"), make("banana")
    twin = make("banana", skip_instance_cache=True)
    assert twin is not banana
    assert raspberry != banana
    assert banana == twin
    assert hash(banana) == hash(twin)
    assert hash(raspberry) != hash(banana)
    for cached in (raspberry, banana):
        assert cached != local
        assert hash(cached) != hash(local)
    assert "CanonicalSimpleCacheFileSystem" in str(banana)


def test_cat_file_and_cat_ranges_coroutines_are_on_the_class(cache_dir: str) -> None:
    # Code that inspects type(fs), as universal_pathlib and zarr do, must find them.
    fs = fsspec.filesystem("simplecache", target_protocol="memory", cache_storage=cache_dir)
    assert type(fs) is CanonicalSimpleCacheFileSystem
    for name in ("_cat_file", "_cat_ranges"):
        assert inspect.iscoroutinefunction(getattr(type(fs), name)), name


# -- a new instance after clear_instance_cache() -------------------------------------------


def read_new_bytes(f: IO[bytes]) -> None:
    """Read the target's current bytes."""
    assert f.read() == b"HELLO!"


def append_world(f: IO[bytes]) -> None:
    """Append to the target's current bytes."""
    f.write(b"world")


def overwrite_from_the_second_byte(f: IO[bytes]) -> None:
    """Read the target's current bytes, then overwrite two of them."""
    assert f.read() == b"HELLO!"
    f.seek(1)
    f.write(b"ey")


@pytest.mark.parametrize("owner", [CanonicalSimpleCacheFileSystem, SimpleCacheFileSystem])
@pytest.mark.parametrize("via", ["fsspec.open", "fsspec.filesystem"])
@pytest.mark.parametrize(
    ("mode", "use", "expected"),
    [
        ("rb", read_new_bytes, b"HELLO!"),
        ("ab", append_world, b"HELLO!world"),
        ("r+b", overwrite_from_the_second_byte, b"HeyLO!"),
    ],
    ids=["read", "append", "update"],
)
def test_a_new_instance_after_clearing_starts_from_the_targets_bytes(
    memfs: Any,
    mem_root: str,
    owner: type[Any],
    via: str,
    mode: str,
    use: Callable[[IO[bytes]], None],
    expected: bytes,
) -> None:
    path = f"{mem_root}/afile"
    memfs.pipe(path, b"hello")
    with open_with_default_storage(via, path) as f:
        assert f.read() == b"hello"
    memfs.pipe(path, b"HELLO!")  # behind the cache's back
    owner.clear_instance_cache()
    with open_with_default_storage(via, path, mode) as f:
        use(f)
    assert memfs.cat(path) == expected
    with open_with_default_storage(via, path) as f:
        assert f.read() == expected


def test_an_old_temporary_directory_stays_while_any_of_its_instances_lives(
    memfs: Any, mem_root: str
) -> None:
    paths = [f"{mem_root}/a", f"{mem_root}/b"]
    memfs.pipe({paths[0]: b"a", paths[1]: b"b"})
    # Two logical files: two instances, made before the clearing.
    first, second = (fsspec.open(f"simplecache::memory://{path}").fs for path in paths)
    first_dir, second_dir = first.storage[-1], second.storage[-1]
    assert first.cat(paths[0]) + second.cat(paths[1]) == b"ab"
    memfs.pipe({paths[0]: b"A", paths[1]: b"B"})
    CanonicalSimpleCacheFileSystem.clear_instance_cache()
    new = fsspec.open(f"simplecache::memory://{paths[1]}").fs
    assert new.storage[-1] not in (first_dir, second_dir)
    del first
    gc.collect()
    assert os.path.isdir(second_dir)  # whether or not the first shared it
    assert second.cat(paths[1]) == b"b"  # its own copy, still served
    del second
    gc.collect()
    assert not os.path.exists(first_dir)
    assert not os.path.exists(second_dir)
    assert new.cat(paths[1]) == b"B"
