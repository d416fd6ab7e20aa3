"""sync_up / sync_down against real sshd pods: rsync on one, the tar stream on one without rsync.

The test pods run on this machine, so a pod's folder is also a local path: the tests compare
both ends file by file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import pytest
from helpers.remote_pods import TestPod, connected, needs_rsync, needs_sshd

from gpuoutlet_jupyter.remote import (
    LocalFolderError,
    RemoteFolderError,
    RemoteToolMissing,
    SyncProgress,
    SyncResult,
    sync_down,
    sync_up,
)
from gpuoutlet_jupyter.remote.ignore import PARTIAL_DIR
from gpuoutlet_jupyter.remote.plan import REASON_CAP, REASON_NEWER

pytestmark = [needs_sshd, pytest.mark.asyncio]

State = dict[str, tuple[object, ...]]
PODS = ["gpu_pod", "bare_pod"]  # rsync on the first, the tar stream on the second
METHOD = {"gpu": "rsync", "bare": "tar"}


@pytest.fixture(params=PODS)
def pod(request: pytest.FixtureRequest) -> TestPod:
    if request.param == "gpu_pod" and not os.path.exists("/usr/bin/rsync"):
        pytest.skip("rsync is not installed (scripts/setup installs it)")
    pod: TestPod = request.getfixturevalue(request.param)
    return pod


def write(root: Path, relative: str, data: bytes | str = b"", mode: int | None = None) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)
    return path


def make_tree(root: Path) -> set[str]:
    """A working folder with every kind of exclude; returns the paths a sync must take."""
    write(
        root,
        ".gpuoutletignore",
        "# results are regenerated\n*.log\n!keep.log\n/build/\ndata/**/*.tmp\n",
    )
    write(root, "a.txt", "alpha")
    write(root, "keep.log", "kept although *.log")
    write(root, "x.log", "excluded")
    write(root, "build/out.bin", b"\0" * 100)  # anchored: only the top-level build/
    write(root, "src/build/kept.txt", "not the top-level build")
    write(root, "data/raw/2024/x.tmp", "excluded by **")
    write(root, "data/raw/y.csv", "1,2\n")
    write(root, ".git/HEAD", "ref: refs/heads/main\n")
    write(root, "__pycache__/m.cpython-311.pyc", b"\x00")
    write(root, "node_modules/p/index.js", "x")
    write(root, ".venv/bin/activate", "x")
    write(root, ".ipynb_checkpoints/nb-checkpoint.ipynb", "{}")
    write(root, "sub/.ipynb_checkpoints/deep-checkpoint.ipynb", "{}")
    write(root, "sub/.gpuoutletignore", "secret.txt\n")
    write(root, "sub/secret.txt", "nested ignore file")
    write(root, "sub/ok.txt", "fine")
    write(root, "name with spaces.txt", "spaces")
    write(root, "ünïcödé.txt", "unicode")
    write(root, "new\nline.txt", "a newline in the name")
    write(root, "-dash.txt", "leading dash")
    write(root, "run.sh", "#!/bin/sh\necho hi\n", mode=0o755)
    write(root, "data/big.bin", os.urandom(300_000))
    (root / "empty").mkdir()
    (root / "link").symlink_to("a.txt")
    return {
        ".gpuoutletignore",
        "a.txt",
        "keep.log",
        "src",
        "src/build",
        "src/build/kept.txt",
        "data",
        "data/raw",
        "data/raw/2024",
        "data/raw/y.csv",
        "data/big.bin",
        "sub",
        "sub/.gpuoutletignore",
        "sub/ok.txt",
        "name with spaces.txt",
        "ünïcödé.txt",
        "new\nline.txt",
        "-dash.txt",
        "run.sh",
        "empty",
        "link",
    }


def state(root: Path) -> State:
    """Every entry under ``root``: kind, size, content hash, permission bits, link target."""
    found: State = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                found[relative] = ("dir",)
            else:
                data = path.read_bytes()
                mode = path.stat().st_mode & 0o777
                found[relative] = ("file", len(data), hashlib.sha256(data).hexdigest(), mode)
    return found


def files_of(result: SyncResult) -> set[str]:
    return {e.path for e in result.transferred}


@pytest.fixture
def work(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(local source, the pod's folder, a local folder to download into)."""
    return tmp_path / "local", tmp_path / "pod" / "work", tmp_path / "back"


async def test_up_and_down_with_excludes(
    pod: TestPod, control_dir: Path, work: tuple[Path, Path, Path]
) -> None:
    local, remote, back = work
    expected = make_tree(local)
    async with connected(pod, control_dir) as conn:
        up = await sync_up(conn, local, str(remote))
        assert up.method == METHOD[pod.name]
        assert up.complete and not up.timed_out and not up.incomplete
        assert set(state(remote)) == expected
        source = state(local)
        assert {p: source[p] for p in expected} == state(remote)  # contents and modes
        assert files_of(up) == {p for p in expected if source[p][0] != "dir"}
        assert set(up.excluded) == {
            ".git/",
            ".ipynb_checkpoints/",
            ".venv/",
            "__pycache__/",
            "build/",
            "data/raw/2024/x.tmp",
            "node_modules/",
            "sub/.ipynb_checkpoints/",
            "sub/secret.txt",
            "x.log",
        }
        assert up.remote_path == str(remote) and up.destination == f"{conn.alias}:{remote}"
        assert up.bytes_transferred == sum(
            int(v[1]) for p, v in source.items() if p in expected and v[0] == "file"
        )

        again = await sync_up(conn, local, str(remote))
        assert again.method is None and not again.transferred
        assert {e.path for e in again.unchanged} == files_of(up)

        down = await sync_down(conn, back, str(remote))
        assert down.method == METHOD[pod.name] and down.complete
        assert state(back) == state(remote)
        assert down.source == f"{conn.alias}:{remote}" and down.destination == str(back)
        assert "Downloaded" in down.summary() and str(back) in down.summary()
        as_json = json.loads(json.dumps(down.to_dict()))
        assert as_json["complete"] and as_json["method"] == METHOD[pod.name]
        assert {f["path"] for f in as_json["transferred"]} == files_of(down)
        assert conn.opened_count == 1


async def test_default_remote_folder_is_work_in_the_pods_home(
    gpu_pod: TestPod, control_dir: Path, tmp_path: Path
) -> None:
    write(tmp_path / "nb", "notebook.ipynb", "{}")
    folder = gpu_pod.home / "work"
    async with connected(gpu_pod, control_dir) as conn:
        try:
            result = await sync_up(conn, tmp_path / "nb")
            assert result.remote_dir == "~/work"
            assert result.remote_path == str(folder)
            assert (folder / "notebook.ipynb").read_text() == "{}"
            back = await sync_down(conn, tmp_path / "back")
            assert files_of(back) == {"notebook.ipynb"}
        finally:
            await conn.run(["rm", "-rf", "--", str(folder)])


async def test_download_honours_the_pods_ignore_files_and_reincludes(
    pod: TestPod, control_dir: Path, work: tuple[Path, Path, Path]
) -> None:
    _, remote, back = work
    write(remote, ".gpuoutletignore", "!.venv\n.venv/lib/\n*.ckpt\n!best.ckpt\n")
    write(remote, ".venv/pyvenv.cfg", "re-included by !.venv")
    write(remote, ".venv/lib/big.so", "excluded again")
    write(remote, "runs/epoch1.ckpt", "x")
    write(remote, "runs/best.ckpt", "y")
    write(remote, "node_modules/x.js", "still excluded by default")
    async with connected(pod, control_dir) as conn:
        result = await sync_down(conn, back, str(remote))
    assert set(state(back)) == {
        ".gpuoutletignore",
        ".venv",
        ".venv/pyvenv.cfg",
        "runs",
        "runs/best.ckpt",
    }
    assert ".venv/lib/" in result.excluded and "node_modules/" in result.excluded


async def test_extra_excludes_and_no_defaults(
    pod: TestPod, control_dir: Path, work: tuple[Path, Path, Path]
) -> None:
    local, remote, _ = work
    write(local, ".git/HEAD", "x")
    write(local, "data/big.parquet", "x")
    write(local, "data/small.csv", "x")
    write(local, ".gpuoutletignore", "!*.parquet\n")
    async with connected(pod, control_dir) as conn:
        await sync_up(conn, local, str(remote), excludes=["*.parquet"], use_default_excludes=False)
    # The caller's excludes rank above the ignore files; without defaults .git goes too.
    assert set(state(remote)) == {".git", ".git/HEAD", ".gpuoutletignore", "data", "data/small.csv"}


async def test_progress_is_reported(
    pod: TestPod, control_dir: Path, work: tuple[Path, Path, Path]
) -> None:
    local, remote, back = work
    write(local, "one.bin", os.urandom(1_000_000))
    write(local, "two.bin", os.urandom(500_000))
    async with connected(pod, control_dir) as conn:
        for direction in ("up", "down"):
            reports: list[SyncProgress] = []
            if direction == "up":
                await sync_up(conn, local, str(remote), progress=reports.append, bwlimit=1_000_000)
            else:
                await sync_down(conn, back, str(remote), progress=reports.append, bwlimit=1_000_000)
            assert reports, direction
            done = [r.bytes_done for r in reports]
            assert done == sorted(done), direction  # never goes back
            assert any(0 < r.bytes_done < 1_500_000 for r in reports[:-1]), direction
            last = reports[-1]
            assert last.final and last.bytes_total == 1_500_000 and last.bytes_done == 1_500_000
            assert last.files_total == 2 and last.direction == direction
            assert 0 < last.rate < 5_000_000  # bwlimit is 1 MB/s
            assert all(not r.final for r in reports[:-1])


async def test_byte_cap_saves_what_fits_and_says_what_was_left(
    pod: TestPod, control_dir: Path, work: tuple[Path, Path, Path]
) -> None:
    _, remote, back = work
    for name, size in {
        "a.txt": 1_000,
        "b.csv": 10_000,
        "c.npz": 100_000,
        "model.ckpt": 1_000_000,
    }.items():
        write(remote, name, os.urandom(size))
    async with connected(pod, control_dir) as conn:
        result = await sync_down(conn, back, str(remote), max_bytes=150_000)
        assert files_of(result) == {"a.txt", "b.csv", "c.npz"}
        assert [(s.path, s.size, s.reason) for s in result.left_out] == [
            ("model.ckpt", 1_000_000, REASON_CAP)
        ]
        assert not result.complete and result.bytes_left_out == 1_000_000
        assert "left out over the byte cap (1.0 MB)" in result.summary()
        assert set(state(back)) == {"a.txt", "b.csv", "c.npz"}
        # A later save with room takes only what is missing.
        rest = await sync_down(conn, back, str(remote), max_bytes=1_000_000)
        assert files_of(rest) == {"model.ckpt"} and rest.complete
        assert len(rest.unchanged) == 3


async def test_newer_files_at_the_destination_are_kept(
    pod: TestPod, control_dir: Path, work: tuple[Path, Path, Path]
) -> None:
    _, remote, back = work
    source = write(remote, "notes.md", "from the pod")
    os.utime(source, (1_700_000_000, 1_700_000_000))
    write(back, "notes.md", "edited here since")  # mtime: now, newer
    write(back, "mine.txt", "only here")
    async with connected(pod, control_dir) as conn:
        result = await sync_down(conn, back, str(remote))
        assert [(s.path, s.reason) for s in result.skipped] == [("notes.md", REASON_NEWER)]
        assert (back / "notes.md").read_text() == "edited here since"
        replaced = await sync_down(conn, back, str(remote), overwrite_newer=True)
        assert files_of(replaced) == {"notes.md"}
    assert (back / "notes.md").read_text() == "from the pod"
    assert (back / "mine.txt").read_text() == "only here"  # a sync never deletes


async def test_nothing_is_written_through_a_symlink_at_the_destination(
    pod: TestPod, control_dir: Path, work: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, remote, back = work
    write(remote, "sub/payload.txt", "must not land outside")
    outside = tmp_path / "outside"
    outside.mkdir()
    back.mkdir(parents=True)
    (back / "sub").symlink_to(outside)
    async with connected(pod, control_dir) as conn:
        result = await sync_down(conn, back, str(remote))
    assert list(outside.iterdir()) == []
    assert {s.path for s in result.skipped} == {"sub", "sub/payload.txt"}


@needs_rsync
async def test_interrupted_rsync_resumes_from_its_partial_file(
    gpu_pod: TestPod, control_dir: Path, work: tuple[Path, Path, Path]
) -> None:
    local, remote, _ = work
    size = 16_000_000
    write(local, "checkpoint.pt", os.urandom(size))
    write(local, "small.txt", "x")
    async with connected(gpu_pod, control_dir) as conn:
        cut = await sync_up(conn, local, str(remote), bwlimit=2_000_000, timeout=4)
        assert cut.timed_out and not cut.complete
        assert "checkpoint.pt" in {e.path for e in cut.incomplete}
        assert "ran out of time" in cut.summary()
        partial = remote / PARTIAL_DIR / "checkpoint.pt"
        # The pod's rsync moves its partial file aside when the connection goes.
        for _ in range(100):
            if partial.exists() and partial.stat().st_size > 0:
                break
            await asyncio.sleep(0.05)
        kept = partial.stat().st_size
        assert 0 < kept < size
        assert not (remote / "checkpoint.pt").exists()  # never a truncated file in place

        resumed = await sync_up(conn, local, str(remote))
        assert resumed.complete and "checkpoint.pt" in files_of(resumed)
        assert resumed.wire_bytes is not None
        assert resumed.wire_bytes < size - kept + 1_000_000  # only the rest was sent
    assert state(local)["checkpoint.pt"] == state(remote)["checkpoint.pt"]
    assert not partial.exists()


async def test_interrupted_tar_resumes_by_skipping_complete_files(
    bare_pod: TestPod, control_dir: Path, work: tuple[Path, Path, Path]
) -> None:
    local, remote, back = work
    names = [f"shard-{i}.bin" for i in range(8)]
    for name in names:
        write(local, name, os.urandom(1_000_000))
    async with connected(bare_pod, control_dir) as conn:
        cut = await sync_up(conn, local, str(remote), bwlimit=1_000_000, timeout=5)
        assert cut.method == "tar" and cut.timed_out
        assert 1 <= len(cut.transferred) < len(names)
        assert {e.path for e in cut.transferred} | {e.path for e in cut.incomplete} == set(names)
        resumed = await sync_up(conn, local, str(remote))
        assert resumed.complete
        assert {e.path for e in resumed.unchanged} == files_of(cut)
        assert files_of(resumed) == set(names) - files_of(cut)
        assert state(remote) == state(local)

        # The same the other way: a cut download leaves no half file under its real name.
        cut_down = await sync_down(conn, back, str(remote), bwlimit=1_000_000, timeout=5)
        assert cut_down.timed_out and 1 <= len(cut_down.transferred) < len(names)
        assert sorted(p.name for p in back.iterdir()) == sorted(files_of(cut_down))
        rest = await sync_down(conn, back, str(remote))
        assert rest.complete and files_of(rest) == set(names) - files_of(cut_down)
    assert state(back) == state(local)


async def test_errors_say_what_to_do(pod: TestPod, control_dir: Path, tmp_path: Path) -> None:
    async with connected(pod, control_dir) as conn:
        with pytest.raises(LocalFolderError, match="is not a folder on this machine"):
            await sync_up(conn, tmp_path / "missing", str(tmp_path / "r"))
        with pytest.raises(RemoteFolderError, match="the pod has no folder"):
            await sync_down(conn, tmp_path / "d", str(tmp_path / "no-such-folder"))
        with pytest.raises(RemoteFolderError, match="another user's home"):
            await sync_down(conn, tmp_path / "d", "~alice/work")
        write(tmp_path, "blocker", "a file where the folder should be")
        write(tmp_path / "src", "f.txt", "x")
        with pytest.raises(RemoteFolderError, match="could not create"):
            await sync_up(conn, tmp_path / "src", str(tmp_path / "blocker" / "work"))


async def test_rsync_asked_for_on_a_pod_without_it(
    bare_pod: TestPod, control_dir: Path, work: tuple[Path, Path, Path]
) -> None:
    local, remote, _ = work
    write(local, "f.txt", "x")
    async with connected(bare_pod, control_dir) as conn:
        with pytest.raises(RemoteToolMissing, match="the pod has no rsync"):
            await sync_up(conn, local, str(remote), method="rsync")
