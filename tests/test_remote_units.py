"""The remote layer's pure parts: ignore rules, listings, plans, control paths, progress."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from gpuoutlet_jupyter.remote.controlpath import (
    MAX_CONTROL_DIR,
    MAX_SOCKET_PATH,
    check_control_dir_length,
    socket_path_length,
)
from gpuoutlet_jupyter.remote.errors import ControlPathError
from gpuoutlet_jupyter.remote.ignore import IgnoreRules, parse_rule
from gpuoutlet_jupyter.remote.listing import FileEntry, RemoteTree, parse_find, select_local
from gpuoutlet_jupyter.remote.plan import REASON_CAP, REASON_NEWER, make_plan
from gpuoutlet_jupyter.remote.progress import ProgressMeter, SyncProgress, Throttle
from gpuoutlet_jupyter.remote.sync import shell_path


def ignored(patterns: str, path: str, is_dir: bool = False) -> bool:
    return IgnoreRules().with_file(patterns).ignored(path, is_dir)


@pytest.mark.parametrize(
    ("patterns", "path", "is_dir", "expected"),
    [
        # Unanchored names match at any depth.
        ("*.log", "a.log", False, True),
        ("*.log", "deep/er/a.log", False, True),
        ("*.log", "a.log.txt", False, False),
        ("__pycache__", "pkg/__pycache__", True, True),
        # A slash at the start or in the middle anchors to the ignore file's folder.
        ("/build", "build", True, True),
        ("/build", "src/build", True, False),
        ("doc/frotz", "doc/frotz", True, True),
        ("doc/frotz", "a/doc/frotz", True, False),
        # A trailing slash matches folders only.
        ("out/", "out", True, True),
        ("out/", "out", False, False),
        ("out/", "x/out", True, True),
        # * and ? never cross a slash.
        ("a/*.py", "a/b.py", False, True),
        ("a/*.py", "a/b/c.py", False, False),
        ("?.txt", "x.txt", False, True),
        ("?.txt", "xy.txt", False, False),
        # ** in its three places.
        ("**/logs", "logs", True, True),
        ("**/logs", "a/b/logs", True, True),
        ("**/logs/debug.log", "x/logs/debug.log", False, True),
        ("abc/**", "abc/x/y", False, True),
        ("abc/**", "abc", True, False),
        ("a/**/b", "a/b", True, True),
        ("a/**/b", "a/x/y/b", True, True),
        ("a/**/b", "ab", True, False),
        ("x**y", "x/y", False, False),  # other runs of stars are one star
        ("x**y", "xzzy", False, True),
        # Classes, escapes, comments, trailing spaces.
        ("[abc].txt", "b.txt", False, True),
        ("[!abc].txt", "b.txt", False, False),
        ("[!abc].txt", "d.txt", False, True),
        ("[a-c]x", "bx", False, True),
        ("\\#file", "#file", False, True),
        ("# comment", "# comment", False, False),
        ("\\!important", "!important", False, True),
        ("trailing   ", "trailing", False, True),
        ("space\\ ", "space ", False, True),
        ("[unclosed", "[unclosed", False, True),
        ("*", "anything/at/all", False, True),
    ],
)
def test_gitignore_patterns(patterns: str, path: str, is_dir: bool, expected: bool) -> None:
    assert ignored(patterns, path, is_dir) is expected


def test_last_match_wins_and_negation() -> None:
    rules = "*.log\n!keep.log\nkeep.log.old\n"
    assert ignored(rules, "a.log") and not ignored(rules, "keep.log")
    assert not ignored(rules, "x/keep.log")
    assert ignored("!a\na", "a")  # a later rule wins over an earlier negation


def test_blank_and_comment_lines_are_not_rules() -> None:
    for line in ("", "   ", "# x", "/", "!"):
        assert parse_rule(line) is None


def test_nested_rules_apply_below_their_folder_only() -> None:
    rules = IgnoreRules().with_file("*.csv\n/top.txt\n", base="sub")
    assert rules.ignored("sub/a.csv", False)
    assert rules.ignored("sub/deep/a.csv", False)
    assert not rules.ignored("a.csv", False)
    assert rules.ignored("sub/top.txt", False) and not rules.ignored("sub/x/top.txt", False)


def test_defaults_can_be_reincluded_or_turned_off() -> None:
    defaults = IgnoreRules.defaults()
    assert defaults.ignored(".git", True) and defaults.ignored("a/node_modules", True)
    assert not defaults.then(IgnoreRules().with_file("!.git")).ignored(".git", True)
    assert not IgnoreRules.defaults(use_defaults=False).ignored(".git", True)
    assert IgnoreRules.defaults(["*.bin"]).ignored("x.bin", False)


def touch(root: Path, relative: str, data: str = "x") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)


def test_local_selection_never_enters_an_excluded_folder(tmp_path: Path) -> None:
    touch(tmp_path, ".gpuoutletignore", "build/\n!build/keep.txt\nlogs/*\n!logs/keep.txt\n")
    touch(tmp_path, "build/keep.txt")  # cannot be re-included: its folder is excluded
    touch(tmp_path, "logs/a.txt")
    touch(tmp_path, "logs/keep.txt")  # can: logs/ itself is kept, its contents excluded
    touch(tmp_path, "a/.gpuoutletignore", "*.tmp\n")
    touch(tmp_path, "a/b.tmp")
    touch(tmp_path, "b.tmp")
    touch(tmp_path, ".gpuoutlet-partial/x")  # our own in-flight files are never synced
    touch(tmp_path, "a/.c.txt.123.gpuoutlet-part")
    os.mkfifo(tmp_path / "fifo")
    selection = select_local(tmp_path, IgnoreRules.defaults(), IgnoreRules())
    assert set(selection.entries) == {
        ".gpuoutletignore",
        "logs",
        "logs/keep.txt",
        "a",
        "a/.gpuoutletignore",
        "b.tmp",
    }
    assert set(selection.excluded) == {"build/", "logs/a.txt", "a/b.tmp"}
    assert selection.special == ["fifo"]


FIND = (
    b"d 4096 1700000000.5 sub\0"
    b"f 12 1700000001.25 sub/a b.txt\0"
    b"l 5 1700000002.0 link\0"
    b"P 4096 1700000003.0 .venv\0"
    b"f 3 1700000004.0 new\nline\0"
    b"s 0 1700000005.0 sock\0"
    b"f 1 1700000006.0 caf\xc3\xa9 \xff.txt\0"
)


def test_parse_find_output() -> None:
    entries, pruned = parse_find(FIND)
    by_path = {e.path: e for e in entries}
    assert by_path["sub/a b.txt"] == FileEntry("sub/a b.txt", "file", 12, 1700000001.25)
    assert by_path["link"].kind == "link" and by_path["sock"].kind == "other"
    assert by_path["new\nline"].size == 3
    assert os.fsencode("café \udcff.txt") in {os.fsencode(p) for p in by_path}
    assert pruned == [".venv"] and by_path[".venv"].kind == "dir"
    with pytest.raises(ValueError, match="unexpected line from find"):
        parse_find(b"garbage\0")


def test_remote_selection_reports_pruned_folders_the_rules_keep() -> None:
    entries, pruned = parse_find(FIND)
    tree = RemoteTree(entries, pruned)
    plain = tree.select(IgnoreRules.defaults(), IgnoreRules())
    assert ".venv/" in plain.excluded and plain.unlisted == []
    tree.ignore_texts[".gpuoutletignore"] = "!.venv\n"
    kept = tree.select(IgnoreRules.defaults(), IgnoreRules())
    assert kept.unlisted == [".venv"]  # listed next, then selected again
    tree.add([FileEntry(".venv/pyvenv.cfg", "file", 1, 1.0)], listed=[".venv"])
    assert ".venv/pyvenv.cfg" in tree.select(IgnoreRules.defaults(), IgnoreRules()).entries


def entry(path: str, size: int = 10, mtime: float = 1000.0, kind: str = "file") -> FileEntry:
    return FileEntry(path, kind, size, mtime)  # type: ignore[arg-type]


def selection_of(*entries: FileEntry) -> object:
    from gpuoutlet_jupyter.remote.listing import Selection

    return Selection(entries={e.path: e for e in entries})


def test_plan_skips_identical_keeps_newer_and_resolves_clashes() -> None:
    source = selection_of(
        entry("same.txt"),
        entry("changed.txt", size=11),
        entry("older-here.txt", mtime=1000.9),
        entry("newer-there.txt"),
        entry("d", kind="dir"),
        entry("d/x.txt"),
        entry("f-is-dir-there"),
        entry("link", size=5, mtime=1.0, kind="link"),
    )
    dest = {
        "same.txt": entry("same.txt", mtime=1000.4),  # same second: identical
        "changed.txt": entry("changed.txt"),
        "older-here.txt": entry("older-here.txt", mtime=999.0),
        "newer-there.txt": entry("newer-there.txt", size=3, mtime=2000.0),
        "d": entry("d", kind="file"),
        "f-is-dir-there": entry("f-is-dir-there", kind="dir"),
        "link": entry("link", size=5, mtime=999.0, kind="link"),  # a link's time may differ
    }
    plan = make_plan(source, dest.get)  # type: ignore[arg-type]
    assert [e.path for e in plan.send] == ["changed.txt", "older-here.txt"]
    assert [e.path for e in plan.unchanged] == ["link", "same.txt"]
    reasons = {s.path: s.reason for s in plan.skipped}
    assert reasons["newer-there.txt"] == REASON_NEWER
    assert "a file at the destination has this name" in reasons["d"]
    assert reasons["d/x.txt"] == "inside a folder that could not be created"
    assert "a dir at the destination" in reasons["f-is-dir-there"]
    assert plan.dirs == []
    forced = make_plan(source, dest.get, overwrite_newer=True)  # type: ignore[arg-type]
    assert "newer-there.txt" in {e.path for e in forced.send}


def test_plan_byte_cap_takes_the_smallest_first() -> None:
    source = selection_of(entry("a", 50), entry("b", 5), entry("c", 30), entry("d", 20))
    plan = make_plan(source, {}.get, max_bytes=60)  # type: ignore[arg-type]
    assert [e.path for e in plan.send] == ["b", "c", "d"]
    assert [(s.path, s.size, s.reason) for s in plan.left_out] == [("a", 50, REASON_CAP)]
    assert plan.bytes_to_send == 55
    nothing = make_plan(source, {}.get, max_bytes=0)  # type: ignore[arg-type]
    assert nothing.send == [] and len(nothing.left_out) == 4
    with pytest.raises(ValueError, match="max_bytes"):
        make_plan(source, {}.get, max_bytes=-1)  # type: ignore[arg-type]


def test_control_path_length_check() -> None:
    fits = "/" + "a" * (MAX_CONTROL_DIR - 1)
    assert socket_path_length(fits) == MAX_SOCKET_PATH
    check_control_dir_length(fits)
    with pytest.raises(ControlPathError, match=f"{MAX_SOCKET_PATH + 1} bytes"):
        check_control_dir_length(fits + "b")


def test_remote_paths_for_the_shell() -> None:
    assert shell_path("~") == "~"
    assert shell_path("~/work") == "~/work"
    assert shell_path("~/my work") == "~/'my work'"
    assert shell_path("/data/$(rm -rf x)") == "'/data/$(rm -rf x)'"
    assert shell_path("relative") == "relative"


@pytest.mark.asyncio
async def test_progress_meter_reports_at_most_every_fifth_of_a_second() -> None:
    reports: list[SyncProgress] = []
    meter = ProgressMeter(reports.append, direction="up", bytes_total=1000, files_total=2)
    for _ in range(100):
        meter.update(add_bytes=5)
    assert len(reports) <= 1
    await asyncio.sleep(0.25)
    meter.update(add_bytes=500, add_files=1, current="b")
    final = meter.finish()
    assert final.final and final.bytes_done == 1000 and final.files_done == 1
    assert final.fraction == 1.0 and final.current == "b" and final.rate > 0
    assert reports[-1] is final


@pytest.mark.asyncio
async def test_progress_from_a_worker_thread_arrives_on_the_loop() -> None:
    import threading

    seen: list[str] = []
    meter = ProgressMeter(
        lambda _: seen.append(threading.current_thread().name),
        direction="down",
        bytes_total=10,
        files_total=1,
    )
    await asyncio.to_thread(meter.finish)
    await asyncio.sleep(0.05)
    assert seen == [threading.current_thread().name]


def test_throttle_paces_bytes() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    throttle = Throttle(1_000_000, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        throttle.consume(100_000)
    assert slept == pytest.approx([0.1, 0.1, 0.1, 0.1])  # 400 kB at 1 MB/s: 0.4 s
    now[0] += 5  # after a stall (a full pipe) it does not sleep: the average rate counts
    assert throttle.consume(100_000) == 0.0
    assert Throttle(None).consume(10**9) == 0.0
    with pytest.raises(ValueError, match="bwlimit"):
        Throttle(0)


def test_the_layer_imports_only_the_stdlib_and_the_ssh_layer() -> None:
    import subprocess
    import sys

    code = "import sys, gpuoutlet_jupyter.remote\nprint('\\n'.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    ours = {m.split(".")[1] for m in loaded if m.startswith("gpuoutlet_jupyter.")}
    assert ours <= {"remote", "ssh", "_version"}, ours
    for heavy in ("tornado", "jupyter_server", "jupyter_client", "httpx", "pydantic", "IPython"):
        assert heavy not in loaded, heavy
