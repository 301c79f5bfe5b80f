"""zoorepro.download against a local HTTP server (127.0.0.1 only) that can honour or ignore Range
and drop connections, plus hand-built hostile archives."""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from zoorepro.download import (
    Entry,
    download,
    extract,
    extract_member,
    fetch_entry,
    load_manifest,
    read_stamp,
    select_entries,
    sha256sum,
    stamp_path,
    transfer,
)
from zoorepro.errors import ChecksumError, UnsafeArchiveError, ZooreproError

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = os.urandom(300_000)  # incompressible, so a truncated .tar.gz really is cut short


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# local server


@dataclass
class ServerState:
    root: Path
    ignore_range: bool = False
    drop_after: int | None = None  # first response only: send this many body bytes, then close
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from state.root with `Range: bytes=N-` support (206 / 416)."""

    def do_GET(self) -> None:  # http.server's method naming
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        range_header = self.headers.get("Range")
        state.requests.append((self.path, range_header))
        path = state.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if range_header and not state.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.drop_after is not None:
            body, state.drop_after = body[:state.drop_after], None
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Keep pytest output clean."""


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(transfer, "_BACKOFF_S", 0.0)
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.state = ServerState(root)  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd.state, f"http://127.0.0.1:{httpd.server_address[1]}"  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


def _serve(state: ServerState, name: str, data: bytes) -> None:
    (state.root / name).write_bytes(data)


# --------------------------------------------------------------------------------------------
# downloads


def test_good_download_verifies_and_is_not_repeated(server, tmp_path):
    state, base = server
    _serve(state, "w.bin", PAYLOAD)
    dest = tmp_path / "out" / "w.bin"
    assert download(f"{base}/w.bin", dest, _sha(PAYLOAD)) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("w.bin.part").exists()
    assert len(state.requests) == 1
    download(f"{base}/w.bin", dest, _sha(PAYLOAD).upper())
    assert len(state.requests) == 1  # verified on disk, no second request


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    state, base = server
    _serve(state, "w.bin", PAYLOAD)
    dest = tmp_path / "w.bin"
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as err:
        download(f"{base}/w.bin", dest, wrong)
    message = str(err.value)
    assert f"{base}/w.bin" in message and wrong in message and _sha(PAYLOAD) in message
    assert not dest.exists() and not dest.with_name("w.bin.part").exists()


def test_existing_dest_with_wrong_bytes_is_replaced(server, tmp_path):
    state, base = server
    _serve(state, "w.bin", PAYLOAD)
    dest = tmp_path / "w.bin"
    dest.write_bytes(b"stale")
    download(f"{base}/w.bin", dest, _sha(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD and len(state.requests) == 1


def test_resume_sends_range_and_appends(server, tmp_path):
    state, base = server
    _serve(state, "w.bin", PAYLOAD)
    dest = tmp_path / "w.bin"
    half = len(PAYLOAD) // 2
    dest.with_name("w.bin.part").write_bytes(PAYLOAD[:half])
    download(f"{base}/w.bin", dest, _sha(PAYLOAD))
    assert state.requests == [("/w.bin", f"bytes={half}-")]
    assert dest.read_bytes() == PAYLOAD


def test_resumed_download_reports_progress_in_plain_lines(server, tmp_path, capsys, monkeypatch):
    """Not a terminal (a rule's log file): a start line with the resume offset, lines as bytes
    arrive (interval 0 here), a final line with the rate; no carriage returns."""
    monkeypatch.setenv("ZOOREPRO_PROGRESS_INTERVAL", "0")
    monkeypatch.delenv("ZOOREPRO_PROGRESS", raising=False)
    state, base = server
    _serve(state, "w.bin", PAYLOAD)
    dest = tmp_path / "w.bin"
    dest.with_name("w.bin.part").write_bytes(PAYLOAD[:150_000])
    download(f"{base}/w.bin", dest, _sha(PAYLOAD))
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("download w.bin: ")]
    assert lines[0] == "download w.bin: start, 293.0 KiB, resumed at 146.5 KiB"
    assert re.fullmatch(r"download w\.bin: 293\.0 KiB/293\.0 KiB \(100\.0 %\), [\d.]+ [KMG]?i?B/s, ETA 0:00:00",
                        lines[1])
    assert re.fullmatch(r"download w\.bin: 293\.0 KiB/293\.0 KiB \(146\.5 KiB this run\) in \d+\.\d s, "
                        r"[\d.]+ [KMG]?i?B/s", lines[-1])


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    state, base = server
    state.ignore_range = True
    _serve(state, "w.bin", PAYLOAD)
    dest = tmp_path / "w.bin"
    dest.with_name("w.bin.part").write_bytes(b"x" * 1000)  # not even a prefix of the file
    download(f"{base}/w.bin", dest, _sha(PAYLOAD))
    assert state.requests == [("/w.bin", "bytes=1000-")]
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_answered_416_is_verified_without_body(server, tmp_path):
    state, base = server
    _serve(state, "w.bin", PAYLOAD)
    dest = tmp_path / "w.bin"
    dest.with_name("w.bin.part").write_bytes(PAYLOAD)
    download(f"{base}/w.bin", dest, _sha(PAYLOAD))
    assert state.requests == [("/w.bin", f"bytes={len(PAYLOAD)}-")]
    assert dest.read_bytes() == PAYLOAD


def test_oversized_part_answered_416_starts_over(server, tmp_path):
    state, base = server
    _serve(state, "w.bin", PAYLOAD)
    dest = tmp_path / "w.bin"
    dest.with_name("w.bin.part").write_bytes(PAYLOAD + b"junk")
    download(f"{base}/w.bin", dest, _sha(PAYLOAD))
    assert state.requests == [("/w.bin", f"bytes={len(PAYLOAD) + 4}-"), ("/w.bin", None)]
    assert dest.read_bytes() == PAYLOAD


def test_dropped_connection_is_retried_with_range(server, tmp_path):
    state, base = server
    state.drop_after = 100_000
    _serve(state, "w.bin", PAYLOAD)
    dest = tmp_path / "w.bin"
    download(f"{base}/w.bin", dest, _sha(PAYLOAD))
    assert state.requests == [("/w.bin", None), ("/w.bin", "bytes=100000-")]
    assert dest.read_bytes() == PAYLOAD


def test_http_404_fails_at_once(server, tmp_path):
    state, base = server
    with pytest.raises(ZooreproError, match="HTTP 404"):
        download(f"{base}/missing.bin", tmp_path / "m.bin", "0" * 64)
    assert len(state.requests) == 1


def test_missing_pin_without_tofu_raises_before_any_request(server, tmp_path):
    state, base = server
    _serve(state, "w.bin", PAYLOAD)
    with pytest.raises(ChecksumError, match=r"no pinned sha256 for http://127\.0\.0\.1:\d+/w\.bin; "
                                            r"pin it in manifests/"):
        download(f"{base}/w.bin", tmp_path / "w.bin", None)
    assert state.requests == [] and not (tmp_path / "w.bin").exists()


def test_missing_pin_with_tofu_downloads(server, tmp_path):
    state, base = server
    _serve(state, "w.bin", PAYLOAD)
    dest = download(f"{base}/w.bin", tmp_path / "w.bin", None, trust_on_first_use=True)
    assert sha256sum(dest) == _sha(PAYLOAD)


def test_sha256_prefix_pin(server, tmp_path):
    state, base = server
    _serve(state, "model-abc.pth", PAYLOAD)
    good = download(f"{base}/model-abc.pth", tmp_path / "a.pth", None,
                    sha256_prefix=_sha(PAYLOAD)[:8])
    assert good.read_bytes() == PAYLOAD
    bad_prefix = "0" * 8 if not _sha(PAYLOAD).startswith("0" * 8) else "f" * 8
    with pytest.raises(ChecksumError, match="prefix"):
        download(f"{base}/model-abc.pth", tmp_path / "b.pth", None, sha256_prefix=bad_prefix)
    assert not (tmp_path / "b.pth").exists()


def test_bad_pin_format_fails_before_download(server, tmp_path):
    state, base = server
    with pytest.raises(ZooreproError, match="64 hex"):
        download(f"{base}/w.bin", tmp_path / "w.bin", "abc")
    assert state.requests == []


def test_local_path_and_file_url_are_copied(tmp_path):
    source = tmp_path / "mirror" / "w.bin"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    assert download(str(source), tmp_path / "a.bin", _sha(PAYLOAD)).read_bytes() == PAYLOAD
    assert download(source.as_uri(), tmp_path / "b.bin", _sha(PAYLOAD)).read_bytes() == PAYLOAD
    with pytest.raises(ChecksumError):
        download(source.as_uri(), tmp_path / "c.bin", "1" * 64)
    assert not (tmp_path / "c.bin").exists() and not (tmp_path / "c.bin.part").exists()


# --------------------------------------------------------------------------------------------
# archives


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    mode = "w:gz" if path.name.endswith((".tar.gz", ".tgz")) else "w"
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    return info


def _leftovers(dest_dir: Path) -> list[str]:
    """Anything extraction left beside `dest_dir` (temp folders must not survive)."""
    return sorted(p.name for p in dest_dir.parent.iterdir() if p.name.startswith("."))


def test_extract_good_tar_gz_with_inside_symlink(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [
        (_info("pkg", tarfile.DIRTYPE), None),
        (_info("pkg/a.txt"), b"alpha"),
        (_info("pkg/sub/b.txt"), b"beta"),
        (_info("pkg/link", tarfile.SYMTYPE, "a.txt"), None),
    ])
    dest = tmp_path / "out" / "model"
    files = extract(archive, dest)
    assert files == [dest / "pkg/a.txt", dest / "pkg/sub/b.txt", dest / "pkg/link"]
    assert (dest / "pkg/link").read_text() == "alpha"
    assert _leftovers(dest) == []


def test_extract_replaces_previous_output_and_honours_members(tmp_path):
    archive = _tar(tmp_path / "a.tar", [(_info("keep/x.txt"), b"x"), (_info("drop.txt"), b"d")])
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    assert extract(archive, dest, members=["keep/"]) == [dest / "keep/x.txt"]
    assert sorted(p.name for p in dest.iterdir()) == ["keep"]
    assert _leftovers(dest) == []
    with pytest.raises(ZooreproError, match="no member 'nope.txt'"):
        extract(archive, tmp_path / "other", members=["nope.txt"])
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("member, match", [
    ((_info("../evil.txt"), b"evil"), "outside"),
    ((_info("{tmp}/evil.txt"), b"evil"), "absolute"),
    ((_info("pkg/link", tarfile.SYMTYPE, "../../outside"), None), "points outside"),
    ((_info("pkg/abslink", tarfile.SYMTYPE, "/etc/passwd"), None), "points outside"),
    ((_info("pkg/hard", tarfile.LNKTYPE, "../outside"), None), "points outside"),
    ((_info("pkg/null", tarfile.CHRTYPE), None), "device"),
])
def test_unsafe_tar_member_is_refused(tmp_path, member, match):
    info, data = member
    info.name = info.name.format(tmp=tmp_path)  # an absolute name that would hit tmp_path
    archive = _tar(tmp_path / "bad.tar", [(_info("pkg/ok.txt"), b"ok"), (info, data)])
    dest = tmp_path / "work" / "model"
    with pytest.raises(UnsafeArchiveError, match=match):
        extract(archive, dest)
    assert not dest.exists() and _leftovers(dest) == []
    assert not (tmp_path / "work" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_link_through_inside_symlink_cannot_escape(tmp_path):
    archive = _tar(tmp_path / "chain.tar", [
        (_info("up", tarfile.SYMTYPE, "."), None),
        (_info("sub", tarfile.DIRTYPE), None),
        (_info("sub/esc", tarfile.SYMTYPE, "../up/.."), None),
    ])
    dest = tmp_path / "work" / "model"
    with pytest.raises(UnsafeArchiveError, match="points outside"):
        extract(archive, dest)
    assert not dest.exists()


def test_truncated_tar_gz_is_reported_and_leaves_nothing(tmp_path):
    archive = _tar(tmp_path / "t.tar.gz", [(_info("big.bin"), PAYLOAD), (_info("b.txt"), b"b")])
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "model"
    with pytest.raises(UnsafeArchiveError, match="truncated or corrupt"):
        extract(archive, dest)
    assert not dest.exists() and _leftovers(dest) == []


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


@pytest.mark.parametrize("name, match", [("../evil.txt", "outside"),
                                         ("{tmp}/evil.txt", "absolute")])
def test_zip_slip_is_refused(tmp_path, name, match):
    archive = _zip(tmp_path / "slip.zip", {"ok.txt": b"ok", name.format(tmp=tmp_path): b"evil"})
    dest = tmp_path / "work" / "images"
    with pytest.raises(UnsafeArchiveError, match=match):
        extract(archive, dest)
    assert not dest.exists() and _leftovers(dest) == []
    assert not (tmp_path / "work" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_zip_crc_error_and_truncation_are_reported(tmp_path):
    archive = _zip(tmp_path / "crc.zip", {"val2014/a.jpg": b"PAYLOAD-0123456789" * 50})
    data = archive.read_bytes()
    archive.write_bytes(data.replace(b"PAYLOAD-0", b"PAYLOAD-X", 1))
    with pytest.raises(UnsafeArchiveError, match="truncated or corrupt.*CRC"):
        extract(archive, tmp_path / "images")
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsafeArchiveError, match="truncated or corrupt"):
        extract(archive, tmp_path / "images")
    assert not (tmp_path / "images").exists() and _leftovers(tmp_path / "images") == []


def test_good_zip_extracts(tmp_path):
    archive = _zip(tmp_path / "val.zip", {"val2014/": b"", "val2014/a.jpg": b"jpg"})
    dest = tmp_path / "images"
    assert extract(archive, dest) == [dest / "val2014/a.jpg"]
    assert (dest / "val2014/a.jpg").read_bytes() == b"jpg"


def test_extract_member_from_zip_and_tar(tmp_path):
    questions = json.dumps({"questions": [{"question_id": 1}]}).encode()
    zipped = _zip(tmp_path / "q.zip", {"v2_questions.json": questions, "other.json": b"{}"})
    dest = tmp_path / "out" / "q.json"
    assert extract_member(zipped, "v2_questions.json", dest) == dest
    assert dest.read_bytes() == questions
    assert _leftovers(dest) == []
    tarred = _tar(tmp_path / "q.tar.gz", [(_info("d/q.json"), questions),
                                          (_info("d/l", tarfile.SYMTYPE, "q.json"), None)])
    assert extract_member(tarred, "d/q.json", tmp_path / "t.json").read_bytes() == questions
    with pytest.raises(UnsafeArchiveError, match="not a regular file"):
        extract_member(tarred, "d/l", tmp_path / "l.json")
    with pytest.raises(ZooreproError, match="no file member"):
        extract_member(zipped, "missing.json", tmp_path / "m.json")
    assert not (tmp_path / "l.json").exists() and not (tmp_path / "m.json").exists()
    assert _leftovers(tmp_path / "t.json") == []


def test_extract_member_of_corrupt_zip_is_atomic(tmp_path):
    archive = _zip(tmp_path / "q.zip", {"q.json": b"PAYLOAD-0123456789" * 50})
    archive.write_bytes(archive.read_bytes().replace(b"PAYLOAD-0", b"PAYLOAD-X", 1))
    dest = tmp_path / "out" / "q.json"
    with pytest.raises(UnsafeArchiveError, match="truncated or corrupt"):
        extract_member(archive, "q.json", dest)
    assert not dest.exists() and _leftovers(dest) == []


# --------------------------------------------------------------------------------------------
# manifests and fetch_entry


def _fixture_files(state: ServerState) -> dict[str, bytes]:
    """A model tarball, a questions zip and a plain weights file on the server."""
    files = {}
    tar_path = _tar(state.root / "model.tar.gz", [(_info("config.json"), b"{}"),
                                                  (_info("weights.th"), PAYLOAD[:1000])])
    files["model.tar.gz"] = tar_path.read_bytes()
    files["qs.zip"] = _zip(state.root / "qs.zip", {"q.json": b'{"questions": []}'}).read_bytes()
    _serve(state, "w-1234.pth", PAYLOAD)
    files["w-1234.pth"] = PAYLOAD
    return files


def _write_manifest(path: Path, base: str, files: dict[str, bytes]) -> Path:
    path.write_text(f"""\
entries:
  - name: model
    url: {base}/model.tar.gz
    sha256: "{_sha(files['model.tar.gz'])}"
    dest: model.tar.gz
    extract: model
  - name: questions
    url: {base}/qs.zip
    sha256: "{_sha(files['qs.zip'])}"
    dest: qs.zip
    member: q.json
  - name: weights
    url: {base}/w-1234.pth
    sha256: null
    sha256_prefix: "{_sha(PAYLOAD)[:8]}"
    dest: torch_home/hub/checkpoints/w-1234.pth
  - name: unpinned
    url: {base}/w-1234.pth
    sha256: null
    dest: unpinned.bin
""")
    return path


def test_fetch_entry_end_to_end(server, tmp_path):
    state, base = server
    files = _fixture_files(state)
    entries = {e.name: e for e in load_manifest(_write_manifest(tmp_path / "m.yaml", base, files))}
    root = tmp_path / "data" / "full" / "vilbert"

    assert fetch_entry(entries["model"], root) == root / "model"
    assert (root / "model/weights.th").read_bytes() == PAYLOAD[:1000]
    assert fetch_entry(entries["questions"], root).read_bytes() == b'{"questions": []}'
    assert fetch_entry(entries["weights"], root).read_bytes() == PAYLOAD
    assert stamp_path(entries["model"], root) == root / ".done" / "model"  # rules/vilbert.smk
    stamp = read_stamp(entries["model"], root)
    assert stamp is not None and stamp.sha256 == _sha(files["model.tar.gz"])
    assert stamp.output == "model" and not stamp.trusted_on_first_use

    with pytest.raises(ChecksumError, match="no pinned sha256"):
        fetch_entry(entries["unpinned"], root)
    assert fetch_entry(entries["unpinned"], root, trust_on_first_use=True).exists()
    assert read_stamp(entries["unpinned"], root).trusted_on_first_use

    seen = len(state.requests)
    for entry in entries.values():
        fetch_entry(entry, root, trust_on_first_use=True)
    assert len(state.requests) == seen  # every stamp was current


def test_fetch_entry_redoes_work_without_a_current_stamp(server, tmp_path):
    state, base = server
    files = _fixture_files(state)
    entry = {e.name: e for e in load_manifest(_write_manifest(tmp_path / "m.yaml", base,
                                                              files))}["model"]
    root = tmp_path / "root"
    fetch_entry(entry, root)
    (root / "model" / "weights.th").unlink()
    stamp_path(entry, root).unlink()  # e.g. a crash between extraction and stamp
    fetch_entry(entry, root)
    assert (root / "model" / "weights.th").read_bytes() == PAYLOAD[:1000]
    assert len(state.requests) == 1  # the archive on disk verified; only extraction was redone


@pytest.mark.parametrize("text, match", [
    ("entries:\n  - {name: a, url: 'http://x/a', dest: ../a}\n", "relative path"),
    ("entries:\n  - {name: a, url: 'http://x/a', dest: /abs}\n", "relative path"),
    ("entries:\n  - {name: a, url: 'http://x/a', dest: a.zip, extract: .}\n", "relative path"),
    ("entries:\n  - {name: a, url: 'http://x/a', dest: d/a.zip, extract: d}\n", "inside extract"),
    ("entries:\n  - {name: a, url: 'http://x/a', dest: a, sha265: abc}\n", "unknown keys"),
    ("entries:\n  - {name: a, url: 'http://x/a', dest: a, extract: x, member: y}\n", "not both"),
    ("entries:\n  - {name: a, url: 'http://x/a', dest: a, sha256_prefix: 12345678}\n", "quoted"),
    (("entries:\n  - {name: a, url: 'http://x/a', dest: a}\n  - {name: a, url: 'http://x/b', "
      "dest: b}\n"), "repeated"),
    ("files: []\n", "entries"),
])
def test_bad_manifest_is_rejected(tmp_path, text, match):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ZooreproError, match=match):
        load_manifest(path)


def test_member_dest_defaults_beside_dest():
    entry = Entry(name="q", url="http://x/q.zip", dest="vqa/q.zip", sha256="A" * 64,
                  member="sub/q.json")
    assert entry.member_dest == "vqa/q.json" and entry.sha256 == "a" * 64
    assert entry.output(Path("/r")) == Path("/r/vqa/q.json")


def test_select_entries_keeps_the_order_asked_and_names_the_known_ones():
    entries = [Entry(name=n, url=f"http://x/{n}", dest=n, sha256="a" * 64) for n in "abc"]
    assert select_entries(entries, None) == entries
    assert [e.name for e in select_entries(entries, ["c", "a"])] == ["c", "a"]
    with pytest.raises(ZooreproError, match=r"no manifest entry named \['z'\]; known: \['a', 'b', 'c'\]"):
        select_entries(entries, ["a", "z"])


def test_sha256sum_is_the_shared_fsutil_one(tmp_path):
    from zoorepro import fsutil

    assert sha256sum is fsutil.sha256sum
    (tmp_path / "f").write_bytes(PAYLOAD)
    assert sha256sum(tmp_path / "f") == _sha(PAYLOAD)


def test_project_manifest_loads():
    entries = load_manifest(REPO / "manifests" / "vilbert.yaml")
    names = {e.name for e in entries}
    assert {"vqa_val_questions", "vqa_val_annotations", "coco_val2014",
            "fasterrcnn_resnet50_fpn_coco", "vilbert_vqa_archive"} <= names
    frcnn = next(e for e in entries if e.name == "fasterrcnn_resnet50_fpn_coco")
    assert frcnn.sha256_prefix == "258fb6c6" and frcnn.sha256.startswith("258fb6c6")


# --------------------------------------------------------------------------------------------
# CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m zoorepro.download ...` as a rule runs it, importing this checkout's package."""
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost",
               PYTHONPATH=pythonpath)
    return subprocess.run([sys.executable, "-m", "zoorepro.download", *args], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=60, check=False)


def test_cli_help_exits_0():
    done = _cli("--help")
    assert done.returncode == 0, done.stderr
    for option in ("--manifest", "--root", "--name", "--trust-on-first-use"):
        assert option in done.stdout
    assert "python -m zoorepro.download" in done.stdout


def test_cli_usage_error_exits_2():
    done = _cli("--root", "r")
    assert done.returncode == 2 and "--manifest" in done.stderr


def test_cli_prints_verified_sha_and_refuses_unpinned(server, tmp_path):
    state, base = server
    files = _fixture_files(state)
    manifest = str(_write_manifest(tmp_path / "m.yaml", base, files))
    root = str(tmp_path / "root")
    done = _cli("--manifest", manifest, "--root", root, "--name", "weights")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [_sha(PAYLOAD), "weights",
                                   str(tmp_path / "root/torch_home/hub/checkpoints/w-1234.pth")]
    refused = _cli("--manifest", manifest, "--root", root, "--name", "unpinned")
    assert refused.returncode == 2 and "no pinned sha256" in refused.stderr
    trusted = _cli("--manifest", manifest, "--root", root, "--name", "unpinned",
                   "--trust-on-first-use")
    assert trusted.returncode == 0, trusted.stderr
    assert f"sha256: \"{_sha(PAYLOAD)}\"" in trusted.stderr
    unknown = _cli("--manifest", manifest, "--root", root, "--name", "nope")
    assert unknown.returncode == 2 and "weights" in unknown.stderr
