"""The storage driver contract: every driver passes this one suite, over a real backend.

After Distribution's `testsuites.go`. Paths are driver paths; files appear whole or not at all;
missing paths raise PathNotFound and malformed ones InvalidPath, whatever the method.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable

import pytest
import requests

from appliance.storage.driver import InvalidPath, PathNotFound, StorageDriver, StorageError

from .conftest import DriverFactory

MiB = 1 << 20
CHUNK = 5 * MiB  # the smallest chunksize S3 allows; the S3 param runs with it


def _files(driver: StorageDriver, path: str) -> dict[str, int]:
    return {info.path: info.size for info in driver.walk(path) if not info.is_dir}


# -- content -------------------------------------------------------------------------------


def test_put_then_get_content(driver: StorageDriver) -> None:
    """Bytes stored with put_content come back unchanged, binary and empty alike."""
    for name, data in (("bin", bytes(range(256)) * 3), ("empty", b""), ("text", b"hello\n")):
        driver.put_content(f"/a/b/{name}", data)
        assert driver.get_content(f"/a/b/{name}") == data


def test_put_content_replaces(driver: StorageDriver) -> None:
    """A second put_content replaces the first, also with something shorter."""
    driver.put_content("/x/file", b"a much longer first version")
    driver.put_content("/x/file", b"short")
    assert driver.get_content("/x/file") == b"short"
    assert driver.stat("/x/file").size == 5


def test_put_content_is_never_half_visible(driver: StorageDriver) -> None:
    """Readers racing a writer see the old or the new content whole, never a mix or a part."""
    versions = [bytes([letter]) * (2 * MiB) for letter in b"ab"]
    driver.put_content("/race/file", versions[0])
    stop, seen, bad = threading.Event(), set(), []

    def read() -> None:
        while not stop.is_set():
            data = driver.get_content("/race/file")
            if data not in versions:
                bad.append((len(data), data[:1], data[-1:]))
            seen.add(data[:1])

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + 1.5
        number = 0
        while time.monotonic() < deadline:
            number += 1
            driver.put_content("/race/file", versions[number % 2])
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert not bad
    assert seen == {b"a", b"b"}


# -- missing and invalid paths -------------------------------------------------------------

MISSING: dict[str, Callable[[StorageDriver], object]] = {
    "get_content": lambda d: d.get_content("/no/such/file"),
    "reader": lambda d: d.reader("/no/such/file").read(),
    "reader_offset": lambda d: d.reader("/no/such/file", 10).read(),
    "stat": lambda d: d.stat("/no/such/file"),
    "list": lambda d: d.list("/no/such/folder"),
    "walk": lambda d: list(d.walk("/no/such/folder")),
    "move": lambda d: d.move("/no/such/file", "/somewhere/else"),
    "delete": lambda d: d.delete("/no/such/file"),
    "concatenate": lambda d: d.concatenate(["/no/such/file"], "/somewhere/else"),
}


@pytest.mark.parametrize("operation", list(MISSING))
def test_missing_paths_raise_path_not_found(driver: StorageDriver, operation: str) -> None:
    """Every method given a path that does not exist raises PathNotFound naming it."""
    driver.put_content("/no/other", b"a neighbour, so the folder itself exists")
    with pytest.raises(PathNotFound):
        MISSING[operation](driver)
    with pytest.raises(PathNotFound):
        driver.stat("/somewhere/else")


BAD_PATHS = ["relative/path", "", "/a/../b", "/a/./b", "/a//b", "/..", "/a/b\0c"]
USES: dict[str, Callable[[StorageDriver, str], object]] = {
    "get_content": lambda d, p: d.get_content(p),
    "put_content": lambda d, p: d.put_content(p, b"x"),
    "reader": lambda d, p: d.reader(p),
    "writer": lambda d, p: d.writer(p),
    "stat": lambda d, p: d.stat(p),
    "list": lambda d, p: d.list(p),
    "walk": lambda d, p: list(d.walk(p)),
    "move_from": lambda d, p: d.move(p, "/ok/destination"),
    "move_to": lambda d, p: d.move("/ok/source", p),
    "delete": lambda d, p: d.delete(p),
    "create_exclusive": lambda d, p: d.create_exclusive(p, b"x"),
    "concatenate_to": lambda d, p: d.concatenate(["/ok/source"], p),
}


@pytest.mark.parametrize("use", list(USES))
def test_invalid_paths_raise_invalid_path(driver: StorageDriver, use: str) -> None:
    """Relative paths, empty, `.` and `..` components and NULs are refused before any I/O."""
    driver.put_content("/ok/source", b"data")
    for path in BAD_PATHS:
        with pytest.raises(InvalidPath):
            USES[use](driver, path)
    assert driver.get_content("/ok/source") == b"data"


def test_put_file_refuses_invalid_paths(driver: StorageDriver, tmp_path) -> None:
    """put_file checks its path too, and leaves the local file alone when it refuses."""
    local = tmp_path / "body"
    local.write_bytes(b"x")
    with pytest.raises(InvalidPath):
        driver.put_file("/a/../b", str(local))
    assert local.exists()


# -- readers and writers -------------------------------------------------------------------


def test_reader_starts_at_the_offset(driver: StorageDriver) -> None:
    """reader(path, offset) gives the bytes from offset; at or past the end it gives none."""
    data = os.urandom(100_000)
    driver.put_content("/r/file", data)
    for offset in (0, 1, 65_536, 99_999):
        with driver.reader("/r/file", offset) as f:
            assert f.read() == data[offset:]
    for offset in (100_000, 100_001):
        with driver.reader("/r/file", offset) as f:
            assert f.read() == b""


def test_reader_reads_in_pieces(driver: StorageDriver) -> None:
    """read(n) returns at most n bytes at a time, and the pieces add up to the file."""
    data = os.urandom(300_000)
    driver.put_content("/r/pieces", data)
    got = bytearray()
    with driver.reader("/r/pieces") as f:
        while piece := f.read(65_536):
            assert len(piece) <= 65_536
            got += piece
    assert bytes(got) == data


def test_writer_commits_what_was_written(driver: StorageDriver) -> None:
    """A writer fed in pieces counts its size and stores everything at commit."""
    pieces = [os.urandom(1000), b"", os.urandom(70_000), os.urandom(3)]
    writer = driver.writer("/w/file")
    for piece in pieces:
        writer.write(piece)
    assert writer.size() == sum(map(len, pieces))
    writer.commit()
    writer.close()
    assert driver.get_content("/w/file") == b"".join(pieces)


def test_writer_cancel_leaves_nothing(driver: StorageDriver) -> None:
    """A cancelled writer, even one past a part, leaves no file behind."""
    writer = driver.writer("/w/cancelled")
    writer.write(os.urandom(CHUNK + 10))
    writer.cancel()
    writer.close()
    with pytest.raises(PathNotFound):
        driver.stat("/w/cancelled")


def test_large_writer_goes_up_in_parts(driver: StorageDriver) -> None:
    """More than a chunk (a multipart upload on object stores) reads back byte for byte."""
    data = os.urandom(2 * CHUNK + 12_345)
    writer = driver.writer("/w/large")
    for start in range(0, len(data), MiB):
        writer.write(data[start:start + MiB])
    writer.commit()
    writer.close()
    assert driver.stat("/w/large").size == len(data)
    with driver.reader("/w/large", CHUNK + 7) as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data[CHUNK + 7:]).digest()


def test_append_only_where_the_driver_says_so(driver: StorageDriver) -> None:
    """Drivers with `appends` continue a file; the others refuse instead of rewriting it."""
    driver.put_content("/w/appended", b"first,")
    if driver.appends:
        writer = driver.writer("/w/appended", append=True)
        assert writer.size() == 6
        writer.write(b"second")
        writer.commit()
        assert driver.get_content("/w/appended") == b"first,second"
    else:
        with pytest.raises(StorageError):
            driver.writer("/w/appended", append=True)
        assert driver.get_content("/w/appended") == b"first,"


# -- stat, list, walk ----------------------------------------------------------------------


def test_stat_of_a_file(driver: StorageDriver) -> None:
    """stat gives a file's size and a recent modification time."""
    before = time.time()
    driver.put_content("/s/dir/file", b"12345")
    info = driver.stat("/s/dir/file")
    assert (info.path, info.size, info.is_dir) == ("/s/dir/file", 5, False)
    assert before - 5 <= info.modified <= time.time() + 5


def test_stat_of_a_folder(driver: StorageDriver) -> None:
    """Folders, however deep above a file, stat as folders; a key prefix is not a folder."""
    driver.put_content("/s/a/b/c/file", b"x")
    for folder in ("/s", "/s/a", "/s/a/b", "/s/a/b/c"):
        assert driver.stat(folder).is_dir, folder
    with pytest.raises(PathNotFound):
        driver.stat("/s/a/b/c/fi")
    with pytest.raises(PathNotFound):
        driver.stat("/s/a/b/c/file/below")


def test_list_gives_immediate_children(driver: StorageDriver) -> None:
    """list returns files and folders right below a folder, as full sorted paths."""
    for path in ("/l/one", "/l/two/three", "/l/two/four/five", "/l/six/seven", "/lx/other"):
        driver.put_content(path, b"x")
    assert driver.list("/l") == ["/l/one", "/l/six", "/l/two"]
    assert driver.list("/l/two") == ["/l/two/four", "/l/two/three"]
    assert driver.list("/l/") == ["/l/one", "/l/six", "/l/two"]
    assert {"/l", "/lx"} <= set(driver.list("/"))


def test_list_of_a_file_is_not_found(driver: StorageDriver) -> None:
    """A file has no children: listing it raises PathNotFound."""
    driver.put_content("/l/file", b"x")
    with pytest.raises(PathNotFound):
        driver.list("/l/file")


def test_walk_yields_every_file_below(driver: StorageDriver) -> None:
    """walk reaches every file at any depth, with sizes, and nothing beside the folder."""
    files = {"/w/a": 1, "/w/b/c": 2, "/w/b/d/e": 3, "/w/b/d/f/g": 4}
    for path, size in files.items():
        driver.put_content(path, b"x" * size)
    driver.put_content("/wx/sibling", b"not below /w")
    assert _files(driver, "/w") == files
    assert _files(driver, "/w/b/d") == {"/w/b/d/e": 3, "/w/b/d/f/g": 4}
    for info in driver.walk("/w"):
        if not info.is_dir:
            assert info.modified > 0


# -- move, delete --------------------------------------------------------------------------


def test_move_a_file(driver: StorageDriver) -> None:
    """move puts the content at the destination (replacing what was there) and drops the source."""
    driver.put_content("/m/source", b"content")
    driver.put_content("/m/other/destination", b"old")
    driver.move("/m/source", "/m/other/destination")
    assert driver.get_content("/m/other/destination") == b"content"
    with pytest.raises(PathNotFound):
        driver.stat("/m/source")
    driver.move("/m/other/destination", "/m/new/deep/place")
    assert driver.get_content("/m/new/deep/place") == b"content"


def test_move_a_large_file(driver_factory: DriverFactory) -> None:
    """A file above the copy threshold moves intact (a multipart copy on object stores)."""
    driver = driver_factory(multipartcopythresholdsize=CHUNK, multipartcopychunksize=CHUNK)
    data = os.urandom(2 * CHUNK + 999)
    driver.put_content("/m/large", data)
    driver.move("/m/large", "/m/moved")
    assert hashlib.sha256(driver.get_content("/m/moved")).digest() == hashlib.sha256(data).digest()
    with pytest.raises(PathNotFound):
        driver.stat("/m/large")


def test_delete_a_file(driver: StorageDriver) -> None:
    """delete removes one file and nothing beside it, not even a name it is a prefix of."""
    driver.put_content("/d/file", b"x")
    driver.put_content("/d/filex", b"y")
    driver.delete("/d/file")
    with pytest.raises(PathNotFound):
        driver.stat("/d/file")
    assert driver.get_content("/d/filex") == b"y"


def test_delete_a_folder_recursively(driver: StorageDriver) -> None:
    """Deleting a folder removes everything below; its parent no longer lists it."""
    for path in ("/t/tags/v1/current/link", "/t/tags/v1/index/sha256/ab/link",
                 "/t/tags/v2/current/link", "/t/tags/v10/current/link"):
        driver.put_content(path, b"x")
    driver.delete("/t/tags/v1")
    assert driver.list("/t/tags") == ["/t/tags/v10", "/t/tags/v2"]
    assert _files(driver, "/t") == {"/t/tags/v10/current/link": 1, "/t/tags/v2/current/link": 1}
    for gone in ("/t/tags/v1", "/t/tags/v1/current", "/t/tags/v1/current/link"):
        with pytest.raises(PathNotFound):
            driver.stat(gone)
    with pytest.raises(PathNotFound):
        driver.delete("/t/tags/v1")


def test_emptied_folders_can_be_deleted(driver: StorageDriver) -> None:
    """A folder whose files were deleted one by one may linger, empty (a filesystem keeps it,
    so does SeaweedFS; S3 does not): walk finds no file in it, and deleting it, if it is still
    there, makes it vanish from its parent's listing."""
    driver.put_content("/e/keep", b"x")
    driver.put_content("/e/gone/deep/file", b"x")
    driver.delete("/e/gone/deep/file")
    assert _files(driver, "/e") == {"/e/keep": 1}
    if "/e/gone" in driver.list("/e"):
        assert driver.stat("/e/gone").is_dir
        assert driver.list("/e/gone") in ([], ["/e/gone/deep"])
        driver.delete("/e/gone")
    assert driver.list("/e") == ["/e/keep"]


# -- create_exclusive, put_file, concatenate ------------------------------------------------


def test_create_exclusive(driver: StorageDriver) -> None:
    """The first create wins; later ones return False and change nothing."""
    assert driver.create_exclusive("/lock/file", b"first") is True
    assert driver.create_exclusive("/lock/file", b"second") is False
    assert driver.get_content("/lock/file") == b"first"
    driver.delete("/lock/file")
    assert driver.create_exclusive("/lock/file", b"third") is True


def test_create_exclusive_has_one_winner(driver_factory: DriverFactory) -> None:
    """Racing creators (each with its own driver, as separate hosts would be) have one winner."""
    drivers = [driver_factory() for _ in range(8)]
    barrier = threading.Barrier(len(drivers))
    results: list[bool] = []

    def create(number: int) -> None:
        barrier.wait()
        results.append(drivers[number].create_exclusive("/lock/race", str(number).encode()))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(len(drivers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * (len(drivers) - 1) + [True]
    assert drivers[0].get_content("/lock/race") in {str(n).encode() for n in range(len(drivers))}


@pytest.mark.parametrize("size", [0, 1000, 2 * CHUNK + 5])
def test_put_file_stores_and_consumes_the_file(driver: StorageDriver, size: int) -> None:
    """put_file stores a spooled file (in parts when large) and removes the local copy."""
    spool = driver.spool_directory()
    assert spool is not None and os.path.isdir(spool)
    local = os.path.join(spool, f"body-{size}")
    data = os.urandom(size)
    with open(local, "wb") as f:
        f.write(data)
    driver.put_file(f"/pf/{size}", local)
    assert not os.path.exists(local)
    assert driver.stat(f"/pf/{size}").size == size
    assert hashlib.sha256(driver.get_content(f"/pf/{size}")).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    "sizes",
    [[10, 20, 30], [CHUNK, CHUNK + 1, 100], [CHUNK, 100, CHUNK], [0, 7, 0], [1234], [0]],
    ids=["small", "large-then-small", "small-in-the-middle", "with-empty", "one", "empty"],
)
def test_concatenate(driver: StorageDriver, sizes: list[int]) -> None:
    """concatenate writes the sources in order as one file, and leaves the sources."""
    parts = [os.urandom(size) for size in sizes]
    sources = [f"/c/parts/{number:04d}" for number in range(len(parts))]
    for source, part in zip(sources, parts, strict=True):
        driver.put_content(source, part)
    driver.concatenate(sources, "/c/joined")
    joined = driver.get_content("/c/joined")
    assert len(joined) == sum(sizes)
    assert hashlib.sha256(joined).digest() == hashlib.sha256(b"".join(parts)).digest()
    assert _files(driver, "/c/parts") == {s: len(p) for s, p in zip(sources, parts, strict=True)}


# -- the rest ------------------------------------------------------------------------------


def test_drivers_share_state_through_storage(driver_factory: DriverFactory) -> None:
    """Two drivers on the same storage (two workers or hosts) see each other's writes at once."""
    first, second = driver_factory(), driver_factory()
    first.put_content("/shared/file", b"from the first")
    assert second.get_content("/shared/file") == b"from the first"
    second.delete("/shared/file")
    with pytest.raises(PathNotFound):
        first.stat("/shared/file")


def test_free_bytes_and_spool_directory(driver: StorageDriver) -> None:
    """free_bytes is a count or None (object stores cannot tell); the spool folder is writable."""
    free = driver.free_bytes()
    assert free is None or free > 0
    spool = driver.spool_directory()
    assert spool is not None
    probe = os.path.join(spool, "probe")
    with open(probe, "wb") as f:
        f.write(b"x")
    os.unlink(probe)


def test_redirect_url_serves_the_file(driver: StorageDriver) -> None:
    """A driver that offers redirect URLs gives one a plain HTTP client can GET the file from."""
    redirect_url = getattr(driver, "redirect_url", None)
    driver.put_content("/rd/file", b"redirected content")
    url = redirect_url("/rd/file") if redirect_url else None
    if url is None:  # the filesystem driver serves its files itself
        return
    got = requests.get(url, timeout=10)
    assert got.status_code == 200
    assert got.content == b"redirected content"
    ranged = requests.get(url, headers={"Range": "bytes=11-17"}, timeout=10)
    assert ranged.status_code == 206
    assert ranged.content == b"content"
