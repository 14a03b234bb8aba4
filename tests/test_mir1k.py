"""MIR-1K acquisition: downloads from a local HTTP server, safe extraction, validation, CLI."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import MIR1K as SHARED_MIR1K  # noqa: E402  (HOURGLASS_SEP_SHARED or ../shared)

from hourglass_sep.cli import main
from hourglass_sep.data import mir1k
from hourglass_sep.errors import UserError

CLIPS = ("abjones_1_01", "amy_2_03", "Ani_1_01")


# --------------------------------------------------------------------------- builders


def wav_bytes(
    sr: int = 16000,
    channels: int = 2,
    seconds: float = 0.05,
    subtype: str = "PCM_16",
    seed: int = 0,
) -> bytes:
    rng = np.random.default_rng(seed)
    data = (rng.standard_normal((int(sr * seconds), channels)) * 0.1).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, data, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def good_members(prefix: str = "MIR-1K/") -> dict[str, bytes]:
    members = {f"{prefix}Wavfile/{c}.wav": wav_bytes(seed=i) for i, c in enumerate(CLIPS)}
    members[f"{prefix}Lyrics/{CLIPS[0]}.txt"] = b"la la la\n"
    return members


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def assert_nothing_installed(dest: Path) -> None:
    """No MIR-1K folder, no temporary folder, no unverified archive or partial download."""
    assert not (dest / "MIR-1K").exists()
    assert not list(dest.glob(".MIR-1K.tmp-*"))
    assert not (dest / "MIR-1K.zip").exists()


@pytest.fixture
def good_zip(tmp_path) -> Path:
    (tmp_path / "srv").mkdir(exist_ok=True)
    return make_zip(tmp_path / "srv" / "MIR-1K.zip", good_members())


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(mir1k, "RETRY_BACKOFF", 0.0)


# --------------------------------------------------------------------------- HTTP server


class _Handler(BaseHTTPRequestHandler):
    """Serves files of ``server.root`` with Range support; can ignore Range or drop mid-way."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        f = srv.root / self.path.lstrip("/")
        if not f.is_file():
            self.send_error(404, "Not Found")
            return
        data = f.read_bytes()
        start = 0
        if rng and not srv.ignore_range:
            start = int(re.match(r"bytes=(\d+)-$", rng)[1])
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
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.drop_after is not None:  # send a part, then hang up (once)
            n, srv.drop_after = srv.drop_after, None
            self.wfile.write(body[:n])
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.root = tmp_path / "srv"
    srv.root.mkdir(exist_ok=True)
    srv.requests, srv.ignore_range, srv.drop_after = [], False, None
    srv.url = lambda name="MIR-1K.zip": f"http://127.0.0.1:{srv.server_address[1]}/{name}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def refused_url():
    """A URL on 127.0.0.1 whose port refuses connections."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/MIR-1K.zip"


# --------------------------------------------------------------------------- downloads


def test_download_extracts_validates_and_marks(tmp_path, server, good_zip):
    dest = tmp_path / "data"
    res = mir1k.fetch(dest, urls=[server.url()], md5=md5_of(good_zip), progress=False)
    assert res.wav_dir == dest / "MIR-1K" / "Wavfile" and not res.already
    assert sorted(p.stem for p in res.wav_dir.glob("*.wav")) == sorted(CLIPS)
    assert res.clips == 3 and res.seconds_audio == pytest.approx(0.15)
    marker = json.loads((dest / "MIR-1K" / ".verified").read_text())
    assert (
        marker["clips"] == 3
        and marker["md5"] == md5_of(good_zip)
        and marker["source"] == server.url()
    )
    assert not (dest / "MIR-1K" / "Lyrics").exists()  # only Wavfile/ by default
    assert (dest / "MIR-1K.zip").exists() and not (dest / "MIR-1K.zip.part").exists()
    assert not list(dest.glob(".MIR-1K.tmp-*"))

    # a second run is a no-op (no request at all)
    n = len(server.requests)
    again = mir1k.fetch(dest, urls=[server.url()], md5=md5_of(good_zip), progress=False)
    assert again.already and again.clips == 3 and len(server.requests) == n

    # files changed behind the marker's back -> fetched again (from the kept, verified zip)
    (res.wav_dir / f"{CLIPS[0]}.wav").unlink()
    third = mir1k.fetch(
        dest, urls=[server.url()], md5=md5_of(good_zip), progress=False, extract_all=True
    )
    assert not third.already and third.clips == 3 and len(server.requests) == n
    assert (dest / "MIR-1K" / "Lyrics" / f"{CLIPS[0]}.txt").exists()


def test_wrong_checksum_is_refused_and_moved_aside(tmp_path, server, good_zip):
    dest = tmp_path / "data"
    with pytest.raises(UserError) as ei:
        mir1k.fetch(dest, urls=[server.url()], md5="0" * 32, progress=False)
    msg = str(ei.value)
    assert (
        "md5 mismatch" in msg and "expected " + "0" * 32 in msg and f"got {md5_of(good_zip)}" in msg
    )
    assert "moved aside" in msg and "MIR-1K.zip.bad" in msg
    assert_nothing_installed(dest)
    assert not (dest / "MIR-1K.zip.part").exists()
    assert (dest / "MIR-1K.zip.bad").read_bytes() == good_zip.read_bytes()


def test_refused_url_then_good_mirror(tmp_path, server, good_zip, refused_url):
    dest = tmp_path / "data"
    wav_dir = mir1k.fetch_mir1k(
        dest, urls=[refused_url, server.url()], md5=md5_of(good_zip), progress=False
    )
    assert len(list(wav_dir.glob("*.wav"))) == 3
    assert json.loads((dest / "MIR-1K" / ".verified").read_text())["source"] == server.url()


def test_all_mirrors_failing_lists_each_url(tmp_path, server, refused_url):
    dest = tmp_path / "data"
    missing = server.url("nothing-here.zip")
    with pytest.raises(UserError) as ei:
        mir1k.fetch(dest, urls=[refused_url, missing], progress=False)
    msg = str(ei.value)
    assert f"{refused_url}: " in msg and "refused" in msg.lower()
    assert f"{missing}: HTTP 404" in msg
    assert "--archive" in msg
    assert_nothing_installed(dest)


def test_timeout_is_reported(tmp_path):
    listener = socket.socket()  # accepts connections (backlog) but never answers
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/MIR-1K.zip"
    try:
        t0 = time.monotonic()
        with pytest.raises(UserError, match=re.escape(url) + ".*timed out"):
            mir1k.fetch(tmp_path / "data", urls=[url], progress=False, timeout=0.3, retries=0)
        assert time.monotonic() - t0 < 10
    finally:
        listener.close()


def test_resume_partial_download_with_range(tmp_path, server, good_zip):
    dest = tmp_path / "data"
    dest.mkdir()
    data = good_zip.read_bytes()
    half = len(data) // 2
    (dest / "MIR-1K.zip.part").write_bytes(data[:half])
    mir1k.fetch(dest, urls=[server.url()], md5=md5_of(good_zip), progress=False)
    assert server.requests == [("/MIR-1K.zip", f"bytes={half}-")]
    assert md5_of(dest / "MIR-1K.zip") == md5_of(good_zip)
    assert len(list((dest / "MIR-1K" / "Wavfile").glob("*.wav"))) == 3


def test_server_ignoring_range_restarts(tmp_path, server, good_zip):
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "MIR-1K.zip.part").write_bytes(b"garbage from an earlier attempt")
    server.ignore_range = True
    mir1k.fetch(dest, urls=[server.url()], md5=md5_of(good_zip), progress=False)
    assert len(server.requests) == 1 and server.requests[0][1] is not None  # asked, was ignored
    assert md5_of(dest / "MIR-1K.zip") == md5_of(good_zip)


def test_dropped_connection_is_resumed(tmp_path, server, good_zip):
    dest = tmp_path / "data"
    size = good_zip.stat().st_size
    server.drop_after = size // 3
    mir1k.fetch(dest, urls=[server.url()], md5=md5_of(good_zip), progress=False)
    assert [r for _, r in server.requests] == [None, f"bytes={size // 3}-"]
    assert md5_of(dest / "MIR-1K.zip") == md5_of(good_zip)


def test_bad_resume_is_redone_from_scratch(tmp_path, server, good_zip):
    dest = tmp_path / "data"
    dest.mkdir()
    data = good_zip.read_bytes()
    (dest / "MIR-1K.zip.part").write_bytes(b"\0" * (len(data) // 2))  # wrong bytes, right length
    mir1k.fetch(dest, urls=[server.url()], md5=md5_of(good_zip), progress=False)
    assert [r for _, r in server.requests] == [f"bytes={len(data) // 2}-", None]
    assert not (dest / "MIR-1K.zip.bad").exists()


# --------------------------------------------------------------------------- safe extraction


@pytest.mark.parametrize(
    "members, symlinks, bad",
    [
        ({"../evil.wav": wav_bytes()}, None, "../evil.wav"),
        (
            {"MIR-1K/Wavfile/../../../evil.wav": wav_bytes()},
            None,
            "MIR-1K/Wavfile/../../../evil.wav",
        ),
        ({"/tmp/evil.wav": wav_bytes()}, None, "/tmp/evil.wav"),
        ({}, {"MIR-1K/Wavfile/link.wav": "/etc/passwd"}, "MIR-1K/Wavfile/link.wav"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink"],
)
def test_zip_slip_is_refused(tmp_path, server, members, symlinks, bad):
    evil = make_zip(server.root / "MIR-1K.zip", {**good_members(), **members}, symlinks)
    dest = tmp_path / "a" / "data"
    with pytest.raises(UserError) as ei:
        mir1k.fetch(dest, urls=[server.url()], md5=md5_of(evil), progress=False)
    assert repr(bad) in str(ei.value) and "refusing" in str(ei.value)
    assert not (dest / "MIR-1K").exists() and not list(dest.glob(".MIR-1K.tmp-*"))
    assert not list(tmp_path.rglob("evil.wav")) and not list(tmp_path.rglob("link.wav"))


def test_zip_without_wavfile_names_what_it_found(tmp_path):
    z = make_zip(
        tmp_path / "other.zip", {"MIR-1K/Lyrics/a.txt": b"x", "MIR-1K/PitchLabel/a.pv": b"1"}
    )
    with pytest.raises(
        UserError, match=r"no Wavfile/.*found instead: MIR-1K/Lyrics/, MIR-1K/PitchLabel/"
    ):
        mir1k.fetch(tmp_path / "data", archive=z, md5=None, progress=False)
    assert not (tmp_path / "data" / "MIR-1K").exists()


def test_not_a_zip(tmp_path):
    f = tmp_path / "MIR-1K.zip"
    f.write_bytes(b"<html>login</html>")
    with pytest.raises(UserError, match="not a zip archive"):
        mir1k.fetch(tmp_path / "data", archive=f, md5="none", progress=False)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, why",
    [
        (dict(channels=1), "1 channel"),
        (dict(sr=44100), "44100 Hz"),
        (dict(subtype="FLOAT"), "FLOAT"),
    ],
    ids=["mono", "44k1", "float"],
)
def test_wrong_format_clip_is_rejected(tmp_path, server, kwargs, why):
    members = good_members()
    members["MIR-1K/Wavfile/odd_1_01.wav"] = wav_bytes(**kwargs)
    z = make_zip(server.root / "MIR-1K.zip", members)
    dest = tmp_path / "data"
    with pytest.raises(UserError) as ei:
        mir1k.fetch(dest, urls=[server.url()], md5=md5_of(z), progress=False)
    assert "Wavfile/odd_1_01.wav" in str(ei.value) and why in str(ei.value)
    assert not (dest / "MIR-1K").exists() and not list(dest.glob(".MIR-1K.tmp-*"))


def test_unreadable_clip_is_rejected(tmp_path):
    members = good_members()
    members["MIR-1K/Wavfile/broken_1_01.wav"] = b"RIFF not really"
    z = make_zip(tmp_path / "MIR-1K.zip", members)
    with pytest.raises(UserError, match=r"Wavfile/broken_1_01.wav: unreadable"):
        mir1k.fetch(tmp_path / "data", archive=z, md5=None, progress=False)


def test_manifest_md5_index(tmp_path):
    members = good_members()
    z = make_zip(tmp_path / "MIR-1K.zip", members)
    good = {c: hashlib.md5(members[f"MIR-1K/Wavfile/{c}.wav"]).hexdigest() for c in CLIPS}
    manifest = tmp_path / "manifest.tsv"
    rows = [f"{c}\t{good[c]}\tx" for c in CLIPS[:2]] + ["notthere_1_01\t" + "1" * 32 + "\tx"]
    manifest.write_text("clip\twav_md5\tother\n" + "\n".join(rows) + "\n")
    res = mir1k.fetch(tmp_path / "ok", archive=z, md5=md5_of(z), manifest=manifest, progress=False)
    assert res.clips == 3 and res.manifest_checked == 2

    manifest.write_text(f"clip\twav_md5\n{CLIPS[1]}\t{'f' * 32}\n")
    with pytest.raises(
        UserError, match=rf"Wavfile/{CLIPS[1]}.wav: md5 {good[CLIPS[1]]} .* manifest's {'f' * 32}"
    ):
        mir1k.fetch(tmp_path / "bad", archive=z, md5=md5_of(z), manifest=manifest, progress=False)
    assert not (tmp_path / "bad" / "MIR-1K").exists()

    manifest.write_text("name\tmd5\nx\ty\n")
    with pytest.raises(UserError, match="need 'clip' and 'wav_md5'"):
        mir1k.fetch(tmp_path / "bad", archive=z, md5=None, manifest=manifest, progress=False)


# --------------------------------------------------------------------------- local sources


@pytest.mark.parametrize("layout", ["MIR-1K/Wavfile", "Wavfile"])
def test_local_folder_import(tmp_path, layout):
    src = tmp_path / "mine"
    (src / layout).mkdir(parents=True)
    for i, c in enumerate(CLIPS):
        (src / layout / f"{c}.wav").write_bytes(wav_bytes(seed=i))
    res = mir1k.fetch(tmp_path / "data", archive=src, progress=False)
    assert res.clips == 3 and (tmp_path / "data" / "MIR-1K" / ".verified").exists()
    assert (
        json.loads((tmp_path / "data" / "MIR-1K" / ".verified").read_text())["kind"] == "directory"
    )
    assert len(list((src / layout).glob("*.wav"))) == 3  # the source is untouched


def test_local_folder_without_wavfile(tmp_path):
    src = tmp_path / "mine"
    (src / "Lyrics").mkdir(parents=True)
    (src / "readme.txt").write_text("x")
    with pytest.raises(UserError, match=r"no Wavfile/ folder.*found instead: Lyrics/, readme.txt"):
        mir1k.fetch(tmp_path / "data", archive=src, progress=False)


def test_local_zip_import_and_md5(tmp_path, good_zip):
    res = mir1k.fetch(tmp_path / "data", archive=good_zip, md5=md5_of(good_zip), progress=False)
    assert res.clips == 3 and res.md5 == md5_of(good_zip)
    assert not (tmp_path / "data" / "MIR-1K.zip").exists()  # a local archive is not copied

    before = good_zip.read_bytes()
    with pytest.raises(UserError, match=r"md5 mismatch: expected 3a4e5acd.*left untouched"):
        mir1k.fetch(
            tmp_path / "other", archive=good_zip, progress=False
        )  # default: the official md5
    assert good_zip.read_bytes() == before and not (tmp_path / "other" / "MIR-1K").exists()


def test_existing_unmarked_folder_is_not_clobbered(tmp_path, good_zip):
    dest = tmp_path / "data"
    (dest / "MIR-1K" / "Wavfile").mkdir(parents=True)
    for i, c in enumerate(CLIPS):
        (dest / "MIR-1K" / "Wavfile" / f"{c}.wav").write_bytes(wav_bytes(seed=i))
    with pytest.raises(UserError, match=r"not installed by fetch-mir1k.*--archive"):
        mir1k.fetch(dest, archive=good_zip, md5=None, progress=False)
    res = mir1k.fetch(dest, archive=dest / "MIR-1K", progress=False)  # adopt in place
    assert res.clips == 3 and (dest / "MIR-1K" / ".verified").exists()
    assert mir1k.fetch(dest, archive=good_zip, md5=None, progress=False).already


# --------------------------------------------------------------------------- CLI


def test_cli_errors_exit_2(tmp_path, capsys, refused_url, good_zip):
    dest = tmp_path / "data"
    assert (
        main(
            [
                "fetch-mir1k",
                "--dest",
                str(dest),
                "--url",
                refused_url,
                "--no-progress",
                "--retries",
                "0",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "hourglass-sep fetch-mir1k: error: could not download MIR-1K" in err and refused_url in err
    )
    assert "Traceback" not in err

    assert (
        main(["fetch-mir1k", "--dest", str(dest), "--archive", str(good_zip), "--no-progress"]) == 2
    )
    err = capsys.readouterr().err
    assert f"expected {mir1k.MIR1K_MD5}, got {md5_of(good_zip)}" in err
    assert (
        main(["fetch-mir1k", "--dest", str(dest), "--archive", str(good_zip), "--md5", "xyz"]) == 2
    )
    assert "not an md5" in capsys.readouterr().err
    assert_nothing_installed(dest)


def test_cli_success_and_noop(tmp_path, capsys, server, good_zip):
    dest = tmp_path / "data"
    argv = [
        "fetch-mir1k",
        "--dest",
        str(dest),
        "--url",
        server.url(),
        "--md5",
        md5_of(good_zip),
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"Wavfile: 3 clips, 0\.0 min of audio, from http://127\.0\.0\.1:\d+/MIR-1K\.zip .*\d s", out
    )
    assert main(argv) == 0
    assert "already fetched and verified (3 clips" in capsys.readouterr().out


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_training_split_via_http(tmp_path, server):
    script = SHARED_MIR1K / "materialize.py"
    if not script.exists():
        pytest.skip(
            f"real MIR-1K data not available ({script} is missing; "
            "it lives in ../shared beside the repo)"
        )
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "m"), "--split", "train", "--zip"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    shutil.move(tmp_path / "m" / "MIR-1K.zip", server.root / "MIR-1K.zip")
    shutil.rmtree(tmp_path / "m")
    z = server.root / "MIR-1K.zip"
    res = mir1k.fetch(
        tmp_path / "data",
        urls=[server.url()],
        md5=md5_of(z),
        manifest=SHARED_MIR1K / "manifest.tsv",
        progress=False,
    )
    assert res.clips == 175 and res.manifest_checked == 175
    assert 5 < res.seconds_audio / 60 < 60
