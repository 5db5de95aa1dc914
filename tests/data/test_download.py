"""Download and extraction, offline: archives built here, served from 127.0.0.1."""

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jtcaug.data import DatasetError, MirageCuration, generate, load
from jtcaug.data.download import download_dataset, extract, fetch


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; honours Range unless told not to; can cut a transfer short."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        range_header = self.headers.get("Range")
        if range_header and server.honor_range:
            start = int(range_header.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_after is not None:
            self.wfile.write(body[: server.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests = {}, []
    httpd.honor_range, httpd.cut_after = True, None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


PAYLOAD = bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8))
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def test_fetch_and_verify(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    dest = tmp_path / "a.bin"
    assert fetch(server.url + "/a.bin", dest, sha256=DIGEST, size=len(PAYLOAD)) == DIGEST
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "a.bin.part").exists()
    assert fetch(server.url + "/a.bin", dest) == DIGEST  # present: verified, not fetched
    assert len(server.requests) == 1


def test_resume_with_range(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:123_456])
    assert fetch(server.url + "/a.bin", tmp_path / "a.bin") == DIGEST
    assert server.requests == [("/a.bin", "bytes=123456-")]
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_restart_when_range_is_ignored(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.honor_range = False
    (tmp_path / "a.bin.part").write_bytes(b"stale bytes")
    assert fetch(server.url + "/a.bin", tmp_path / "a.bin") == DIGEST


def test_interrupted_download_resumes_on_the_next_call(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.cut_after = 100_000
    with pytest.raises(DatasetError, match="run the same command again to resume"):
        fetch(server.url + "/a.bin", tmp_path / "a.bin")
    part = tmp_path / "a.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD) and not (tmp_path / "a.bin").exists()
    server.cut_after = None
    assert fetch(server.url + "/a.bin", tmp_path / "a.bin") == DIGEST
    assert server.requests[-1][1] == "bytes=100000-"


def test_wrong_hash_or_size_is_rejected_and_removed(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    with pytest.raises(DatasetError, match="SHA-256"):
        fetch(server.url + "/a.bin", tmp_path / "a.bin", sha256="0" * 64)
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "a.bin.part").exists()
    with pytest.raises(DatasetError, match="expected 5"):
        fetch(server.url + "/a.bin", tmp_path / "a.bin", size=5)


def test_http_errors(server, tmp_path):
    with pytest.raises(DatasetError, match="HTTP 404"):
        fetch(server.url + "/missing", tmp_path / "m")
    with pytest.raises(DatasetError, match="cannot reach"):
        fetch("http://127.0.0.1:1/x", tmp_path / "x", timeout=5)


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


def test_extraction_refuses_escapes(tmp_path):
    root = tmp_path / "root"
    traversal = tarfile.TarInfo("../outside.txt")
    traversal.size = 3
    link = tarfile.TarInfo("data/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    absolute = tarfile.TarInfo("/tmp/abs.txt")
    absolute.size = 3
    for i, member in enumerate((traversal, link, absolute)):
        archive_dir = tmp_path / f"a{i}"
        archive_dir.mkdir()
        data = b"abc" if member.isfile() else b""
        with pytest.raises(DatasetError, match="unsafe"):
            extract(_tar_with(archive_dir, member, data), root)
    assert not (tmp_path / "outside.txt").exists()
    assert list(root.iterdir()) == []  # nothing half-extracted stays behind
    bad_zip = tmp_path / "evil.zip"
    with zipfile.ZipFile(bad_zip, "w") as zf:
        zf.writestr("../../escape.txt", "x")
    with pytest.raises(DatasetError, match="unsafe archive member"):
        extract(bad_zip, root)


def test_nested_zips_are_unpacked(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("dev/1_com.discord_x.json", "{}")
    outer = tmp_path / "MIRAGE-COVID-CCMA-2022.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("MIRAGE-COVID-CCMA-2022/Raw_JSON/Discord.zip", inner.getvalue())
    root = tmp_path / "root"
    (entry,) = extract(outer, root)
    raw = entry / "Raw_JSON"
    assert (raw / "Discord" / "dev" / "1_com.discord_x.json").read_text() == "{}"
    assert not (raw / "Discord.zip").exists()
    with pytest.raises(DatasetError, match="refusing to overwrite"):
        extract(outer, root)


def test_download_dataset_end_to_end(server, tmp_path, exported_tree):
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w:gz") as tar:
        tar.add(exported_tree, arcname=exported_tree.name)
    server.files["/mirage19.tar.gz"] = blob.getvalue()
    root = tmp_path / "data"
    result = download_dataset("mirage19", root, url=server.url + "/mirage19.tar.gz")
    assert result["sha256"] == hashlib.sha256(blob.getvalue()).hexdigest()
    archive = Path(result["archive"])
    assert archive.parent == root / "mirage19"
    assert result["sha256"] in archive.with_name(archive.name + ".sha256").read_text()
    flows = load("mirage19", data_dir=root, curation=MirageCuration(min_class_flows=0))
    expected = generate("synthetic-mirage19", scale=0.02, seed=3)
    np.testing.assert_array_equal(flows.sizes, expected.sizes)
    again = download_dataset("mirage19", root, url=server.url + "/mirage19.tar.gz")
    assert again["extracted"] == result["extracted"] and len(server.requests) == 1


def _mirage_tarball(exported_tree) -> bytes:
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w:gz") as tar:
        tar.add(exported_tree, arcname=exported_tree.name)
    return blob.getvalue()


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_first_download_records_the_hash_and_later_ones_check_it(server, tmp_path, exported_tree):
    server.files["/m.tar.gz"] = _mirage_tarball(exported_tree)
    root = tmp_path / "data"
    first = download_dataset("mirage19", root, url=server.url + "/m.tar.gz", do_extract=False)
    assert first["sha256_origin"] == "recorded now: the publisher gives none"
    archive = Path(first["archive"])
    again = download_dataset("mirage19", root, url=server.url + "/m.tar.gz", do_extract=False)
    assert again["sha256_origin"] == "recorded on first download"
    _flip_last_byte(archive)
    with pytest.raises(DatasetError, match="moved aside to .*sha256-mismatch, not used"):
        download_dataset("mirage19", root, url=server.url + "/m.tar.gz", do_extract=False)
    assert not archive.exists()
    assert archive.with_name(archive.name + ".sha256-mismatch").exists()
    # The next call fetches a good copy; the recorded hash still holds.
    fresh = download_dataset("mirage19", root, url=server.url + "/m.tar.gz", do_extract=False)
    assert fresh["sha256"] == first["sha256"]


def test_every_load_of_an_archive_checks_its_hash(server, tmp_path, exported_tree):
    server.files["/m.tar.gz"] = _mirage_tarball(exported_tree)
    root = tmp_path / "data"
    result = download_dataset("mirage19", root, url=server.url + "/m.tar.gz", do_extract=False)
    archive = Path(result["archive"])
    lenient = MirageCuration(min_class_flows=0)
    assert load("mirage19", data_dir=root, curation=lenient).n_flows > 0
    _flip_last_byte(archive)
    with pytest.raises(DatasetError, match=f"{archive.name}: SHA-256 .* does not match the rec"):
        load("mirage19", data_dir=root, curation=lenient)
    assert not archive.exists()


def test_a_pinned_hash_wins_and_a_bad_fresh_download_is_removed(
    server, tmp_path, exported_tree, monkeypatch
):
    import dataclasses

    import jtcaug.data.download as download

    pinned = dataclasses.replace(download.SOURCES["mirage19"], sha256="0" * 64)
    monkeypatch.setitem(download.SOURCES, "mirage19", pinned)
    server.files["/m.tar.gz"] = _mirage_tarball(exported_tree)
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="expected 0000"):
        download_dataset("mirage19", root, url=server.url + "/m.tar.gz")
    assert not any((root / "mirage19").glob("*.tar.gz*"))
    with pytest.raises(DatasetError, match="differs from the pinned"):
        download_dataset("mirage19", root, url=server.url + "/m.tar.gz", sha256="1" * 64)
