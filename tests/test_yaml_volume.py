from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from lakeflow_job_meta.adapters.yaml_volume import (
    ERROR_TOO_LARGE,
    ERROR_UNREADABLE,
    FileContent,
    VolumeScanner,
    VolumeWatcher,
    choose_mode,
    filesystem_type,
)
from lakeflow_job_meta.errors import ConfigurationError
from lakeflow_job_meta.metadata.files import is_candidate_name
from tests.fakes import FakeClock

EVENT_TIMEOUT = 10.0  # generous: waiting on a real signal, not sleeping


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data)
    return path


def scanner(root: Path, clock: FakeClock | None = None, **kw) -> VolumeScanner:
    return VolumeScanner(str(root), clock=clock or FakeClock(), **kw)


def settled(s: VolumeScanner, full: bool = False):
    """Scan and commit, as the monitor does after applying."""
    changes = s.scan(full=full)
    s.commit(changes)
    return changes


def test_added_includes_subfolders_and_returns_bytes(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "modules: []\n")
    write(tmp_path / "team" / "nested" / "b.yml", "x: 1\n")
    clock = FakeClock()
    ch = scanner(tmp_path, clock).scan()
    assert sorted(ch.added) == ["a.yaml", "team/nested/b.yml"]
    content = ch.added["team/nested/b.yml"]
    assert isinstance(content, FileContent)
    assert content.data == b"x: 1\n" and content.error is None and content.sha256
    assert ch.modified == {} and ch.deleted == [] and ch.unstable == [] and ch.errors == []
    assert clock.sleeps == [0.2]  # one settle interval per scan, not per file


def test_hidden_and_temp_files_ignored(tmp_path: Path) -> None:
    for name in [".hidden.yaml", ".#lock.yaml", "a.yaml~", ".a.yaml.swp", "~$a.yaml", "notes.txt", "x.json"]:
        write(tmp_path / name, "x: 1\n")
    write(tmp_path / ".git" / "c.yaml", "x: 1\n")
    write(tmp_path / "ok.YAML", "x: 1\n")
    ch = scanner(tmp_path).scan()
    assert list(ch.added) == ["ok.YAML"]
    assert not is_candidate_name("#a.yaml#")


def test_no_change_no_sleep_and_nothing_reported(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "x: 1\n")
    clock = FakeClock()
    s = scanner(tmp_path, clock)
    settled(s)
    clock.sleeps.clear()
    assert not s.scan().has_changes
    assert not s.scan(full=True).has_changes
    assert clock.sleeps == []  # unchanged tree costs only a stat walk (plus hashing when full)


def test_modify_in_place_detected(tmp_path: Path) -> None:
    f = write(tmp_path / "a.yaml", "x: 1\n")
    s = scanner(tmp_path)
    settled(s)
    write(f, "x: 22\n")
    ch = s.scan()
    assert list(ch.modified) == ["a.yaml"] and ch.added == {}
    assert ch.modified["a.yaml"].data == b"x: 22\n"


def test_delete_detected(tmp_path: Path) -> None:
    f = write(tmp_path / "sub" / "a.yaml", "x: 1\n")
    s = scanner(tmp_path)
    settled(s)
    f.unlink()
    ch = s.scan()
    assert ch.deleted == ["sub/a.yaml"]
    s.commit(ch)
    assert s.known_paths == []
    assert not s.scan().has_changes


def test_delete_then_recreate_during_settle_is_not_a_deletion(tmp_path: Path) -> None:
    f = write(tmp_path / "a.yaml", "x: 1\n")

    recreate = False

    def meanwhile(seconds: float) -> None:
        if recreate:
            write(f, "x: 1\n")  # editor saves by delete + create

    s = scanner(tmp_path, FakeClock(on_sleep=meanwhile))
    settled(s)
    f.unlink()
    recreate = True
    ch = s.scan()
    assert ch.deleted == [] and ch.unstable == ["a.yaml"]


def test_same_size_same_mtime_edit_missed_by_quick_scan_caught_by_full(tmp_path: Path) -> None:
    f = write(tmp_path / "a.yaml", "x: 1\n")
    s = scanner(tmp_path)
    settled(s)
    st = f.stat()
    write(f, "x: 2\n")  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not s.scan().has_changes
    ch = s.scan(full=True)
    assert list(ch.modified) == ["a.yaml"]
    assert ch.modified["a.yaml"].data == b"x: 2\n"


def test_touch_without_content_change_not_reported(tmp_path: Path) -> None:
    f = write(tmp_path / "a.yaml", "x: 1\n")
    clock = FakeClock()
    s = scanner(tmp_path, clock)
    settled(s)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    write(tmp_path / "b.yaml", "y: 1\n")
    os.utime(tmp_path / "b.yaml", ns=(st.st_atime_ns, st.st_mtime_ns))
    settled(s)
    write(tmp_path / "b.yaml", "y: 1\n")  # rewritten with identical bytes
    ch = s.scan()
    assert not ch.has_changes and ch.unstable == []
    # The new stat was remembered, so the next quick scan does not even re-read.
    clock.sleeps.clear()
    assert not s.scan().has_changes and clock.sleeps == []


def test_half_written_file_is_unstable_until_it_settles(tmp_path: Path) -> None:
    f = write(tmp_path / "big.yaml", "modules:\n  - module_name: a\n")

    writing = True

    def meanwhile(seconds: float) -> None:
        if writing:
            with open(f, "ab") as fh:
                fh.write(b"    sources: []\n")

    s = scanner(tmp_path, FakeClock(on_sleep=meanwhile))
    ch = s.scan()
    assert ch.unstable == ["big.yaml"]
    assert ch.added == {} and ch.modified == {}
    s.commit(ch)  # committing an unstable result must not remember the file
    assert s.known_paths == []

    writing = False
    ch = s.scan()
    assert ch.unstable == []
    assert ch.added["big.yaml"].data == f.read_bytes()


def test_uncommitted_changes_are_detected_again(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "x: 1\n")
    write(tmp_path / "b.yaml", "x: 1\n")
    s = scanner(tmp_path)
    first = s.scan()
    assert sorted(first.added) == ["a.yaml", "b.yaml"]
    # The apply failed: nothing committed, so the next scan reports the same again.
    assert sorted(s.scan().added) == ["a.yaml", "b.yaml"]
    # Partial acknowledgement.
    s.commit(first, paths=["a.yaml"])
    assert list(s.scan().added) == ["b.yaml"]


def test_commit_of_stale_changes_still_detects_newer_edit(tmp_path: Path) -> None:
    f = write(tmp_path / "a.yaml", "x: 1\n")
    s = scanner(tmp_path)
    ch = s.scan()
    write(f, "x: 123\n")  # edited while the caller was applying the first version
    s.commit(ch)
    assert s.scan().modified["a.yaml"].data == b"x: 123\n"


def test_snapshot_restore_round_trip(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "x: 1\n")
    write(tmp_path / "s" / "b.yaml", "x: 2\n")
    s = scanner(tmp_path)
    settled(s)
    persisted = json.loads(json.dumps(s.snapshot()))

    fresh = scanner(tmp_path)
    assert fresh.restore(persisted)
    assert fresh.known_paths == ["a.yaml", "s/b.yaml"]
    assert not fresh.scan(full=True).has_changes
    (tmp_path / "a.yaml").unlink()
    assert fresh.scan().deleted == ["a.yaml"]


def test_restore_rejects_other_root_and_garbage(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "x: 1\n")
    s = scanner(tmp_path)
    settled(s)
    snap = s.snapshot()
    other = scanner(tmp_path / "elsewhere")
    assert not other.restore(snap)
    fresh = scanner(tmp_path)
    assert not fresh.restore({"format": 1, "root": str(tmp_path), "files": {"a.yaml": ["x"]}})
    assert not fresh.restore(None)
    assert list(fresh.scan().added) == ["a.yaml"]  # empty snapshot: everything is new


def test_oversize_file_reported_with_error_marker_once(tmp_path: Path) -> None:
    f = write(tmp_path / "huge.yaml", b"x" * 2048)
    s = scanner(tmp_path, max_bytes=1024)
    ch = settled(s)
    content = ch.added["huge.yaml"]
    assert content.data is None and content.error == ERROR_TOO_LARGE and content.size == 2048
    assert not s.scan().has_changes
    assert not s.scan(full=True).has_changes
    write(f, b"x: 1\n")  # fixed
    ch = s.scan()
    assert ch.modified["huge.yaml"].data == b"x: 1\n" and ch.modified["huge.yaml"].error is None


def test_unreadable_file_reported_with_error_marker_once(tmp_path: Path, monkeypatch) -> None:
    f = write(tmp_path / "a.yaml", "x: 1\n")
    real_open = os.open

    def deny(path, flags, *args):
        if os.fspath(path) == str(f):
            raise PermissionError(13, "Permission denied", str(f))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", deny)
    s = scanner(tmp_path)
    ch = settled(s)
    assert ch.added["a.yaml"].error == ERROR_UNREADABLE and ch.added["a.yaml"].data is None
    assert "Permission denied" in ch.added["a.yaml"].detail
    assert not s.scan(full=True).has_changes
    monkeypatch.setattr(os, "open", real_open)  # permissions fixed: content appears at full scan
    assert s.scan(full=True).modified["a.yaml"].data == b"x: 1\n"


def test_root_missing_at_start_and_deleted_later(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigurationError, match=str(missing)):
        scanner(missing).check_root()
    with pytest.raises(ConfigurationError, match=str(missing)):
        VolumeWatcher(str(missing), threading.Event(), mode="events").start()

    root = tmp_path / "vol"
    write(root / "a.yaml", "x: 1\n")
    s = scanner(root)
    settled(s)
    (root / "a.yaml").unlink()
    root.rmdir()
    ch = s.scan()
    # Reported, not raised, and crucially not turned into "every file deleted".
    assert ch.errors and str(root) in ch.errors[0]
    assert ch.deleted == [] and s.known_paths == ["a.yaml"]


def test_unlistable_subfolder_is_not_reported_deleted(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "locked" / "a.yaml", "x: 1\n")
    write(tmp_path / "b.yaml", "x: 1\n")
    s = scanner(tmp_path)
    settled(s)
    real_scandir = os.scandir
    locked = str(tmp_path / "locked")

    def scandir(path):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    (tmp_path / "b.yaml").unlink()
    ch = s.scan()
    assert ch.deleted == ["b.yaml"]  # the rest of the tree is still scanned
    assert len(ch.errors) == 1 and locked in ch.errors[0]


# ------------------------------------------------------------------ watcher


def test_auto_mode_polls_on_databricks_paths_and_fuse_mounts(tmp_path: Path) -> None:
    assert choose_mode("/Volumes/cat/sch/vol") == "poll"
    assert choose_mode("/dbfs/x") == "poll"
    assert choose_mode("/Workspace/Users/me") == "poll"
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        f"fuse-thing {tmp_path}/fuse\\040dir fuse.s3fs rw 0 0\n"
        f"server:/x {tmp_path}/nfs nfs4 rw 0 0\n"
    )
    assert filesystem_type(str(tmp_path / "fuse dir" / "a"), str(mounts)) == "fuse.s3fs"
    assert choose_mode(str(tmp_path / "fuse dir" / "a"), "auto", str(mounts)) == "poll"
    assert choose_mode(str(tmp_path / "nfs"), "auto", str(mounts)) == "poll"
    assert choose_mode(str(tmp_path / "local"), "auto", str(mounts)) == "events"
    assert choose_mode("/Volumes/x", "events") == "events"
    with pytest.raises(ConfigurationError):
        choose_mode(str(tmp_path), "sometimes")  # type: ignore[arg-type]


def test_poll_mode_starts_no_thread(tmp_path: Path) -> None:
    w = VolumeWatcher(str(tmp_path), threading.Event(), mode="poll")
    w.start()
    assert not w.running
    w.stop()
    w.stop()


@pytest.fixture
def watched(tmp_path: Path):
    wake = threading.Event()
    w = VolumeWatcher(str(tmp_path), wake, mode="events")
    w.start()
    assert w.running
    yield tmp_path, wake, w
    w.stop()


def test_watcher_dropping_a_file_wakes(watched) -> None:
    root, wake, _ = watched
    write(root / "new.yaml", "x: 1\n")
    assert wake.wait(EVENT_TIMEOUT)


def test_watcher_subfolder_modify_and_delete_wake(watched) -> None:
    root, wake, _ = watched
    f = write(root / "a" / "b" / "c.yml", "x: 1\n")
    assert wake.wait(EVENT_TIMEOUT)
    wake.clear()
    with open(f, "ab") as fh:
        fh.write(b"y: 2\n")
    assert wake.wait(EVENT_TIMEOUT)
    wake.clear()
    f.unlink()
    assert wake.wait(EVENT_TIMEOUT)


def test_watcher_rename_from_temp_name_wakes(watched) -> None:
    root, wake, _ = watched
    tmp = write(root / ".a.yaml.tmp", "x: 1\n")
    tmp.rename(root / "a.yaml")
    assert wake.wait(EVENT_TIMEOUT)


def test_watcher_event_filter(tmp_path: Path) -> None:
    from watchdog import events as ev

    w = VolumeWatcher(str(tmp_path), threading.Event(), mode="events")
    yaml = str(tmp_path / "a.yaml")
    # Our own reads produce opened / closed-no-write: waking on them would scan forever.
    assert not w._relevant(ev.FileOpenedEvent(yaml))
    assert not w._relevant(ev.FileClosedNoWriteEvent(yaml))
    assert w._relevant(ev.FileClosedEvent(yaml))
    assert w._relevant(ev.FileCreatedEvent(yaml))
    assert w._relevant(ev.FileDeletedEvent(yaml))
    assert w._relevant(ev.FileMovedEvent(str(tmp_path / ".a.yaml.tmp"), yaml))
    assert not w._relevant(ev.FileModifiedEvent(str(tmp_path / "notes.txt")))
    assert not w._relevant(ev.FileModifiedEvent(str(tmp_path / ".git" / "x.yaml")))
    assert not w._relevant(ev.DirModifiedEvent(str(tmp_path / "sub")))
    assert w._relevant(ev.DirDeletedEvent(str(tmp_path / "sub")))
    assert not w._relevant(ev.DirCreatedEvent(str(tmp_path / ".cache")))


def test_watcher_not_woken_by_scanner_reads(watched) -> None:
    root, wake, w = watched
    write(root / "a.yaml", "x: 1\n")
    assert wake.wait(EVENT_TIMEOUT)
    s = scanner(root)
    settled(s)
    # Drain: an ignored write followed by a relevant marker; events arrive in order, so once the
    # marker is seen, every earlier event (including those from our reads) was handled.
    seen_before_reads = w.events_seen
    wake.clear()
    settled(s, full=True)
    write(root / "notes.txt", "x")
    write(root / "marker.yaml", "x: 1\n")
    assert wake.wait(EVENT_TIMEOUT)
    assert w.events_seen > seen_before_reads
    assert list(s.scan().added) == ["marker.yaml"]


def test_watcher_reports_not_running_when_root_is_deleted(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    write(root / "a.yaml", "x: 1\n")
    wake = threading.Event()
    with VolumeWatcher(str(root), wake, mode="events") as w:
        emitters = list(w._observer.emitters)
        (root / "a.yaml").unlink()
        root.rmdir()
        assert wake.wait(EVENT_TIMEOUT)
        for emitter in emitters:
            emitter.join(EVENT_TIMEOUT)  # the emitter thread ends once inotify drops the watch
        assert not w.running
        root.mkdir()
        w.stop()
        w.start()  # restart once the folder is back
        assert w.running


def test_watcher_stop_is_idempotent_and_thread_safe(tmp_path: Path) -> None:
    w = VolumeWatcher(str(tmp_path), threading.Event(), mode="events")
    w.start()
    w.start()  # idempotent
    threads = [threading.Thread(target=w.stop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(EVENT_TIMEOUT)
    assert not w.running
    w.stop()
    with VolumeWatcher(str(tmp_path), threading.Event(), mode="events") as w2:
        assert w2.running
    assert not w2.running
