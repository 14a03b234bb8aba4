"""Fetch MIR-1K: download (mirrors, md5, resume) or import a local copy, extract safely, validate.

``hourglass-sep fetch-mir1k --dest DIR`` leaves ``DIR/MIR-1K/Wavfile/*.wav`` and, written last,
``DIR/MIR-1K/.verified`` (JSON: source, md5, clip count, ...).  When that marker exists and
matches the files, the verb does nothing.

Sources, in order of preference:

* ``--archive PATH``: a MIR-1K zip the user already has, or a folder holding ``Wavfile/`` or
  ``MIR-1K/Wavfile/`` (no network).
* ``--url URL`` (repeatable; replaces the default list), else ``DEFAULT_URLS``: each URL is tried
  in turn.  The download goes to ``DIR/MIR-1K.zip.part`` (resumed with an HTTP Range request
  when a partial file is there; restarted when the server ignores Range) and is renamed to
  ``DIR/MIR-1K.zip`` only once complete and its md5 matches.  A file with the wrong md5 is
  moved aside to ``DIR/MIR-1K.zip.bad`` and never used.

Extraction refuses members with absolute paths, ``..`` components, symlinks or other special
files, and writes into a hidden temporary folder beside the destination that is renamed into
place only after every clip was extracted and validated (16 kHz, 16-bit PCM, stereo, readable,
and the per-clip md5 of ``--manifest`` when given).  A failure therefore never leaves a
``MIR-1K/`` folder that a later run (or the catalogue step) could mistake for good data.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

import soundfile as sf

from hourglass_sep.errors import UserError

log = logging.getLogger(__name__)

OFFICIAL_URL = "http://mirlab.org/dataset/public/MIR-1K.zip"
# The official archive first; further mirrors go after it.  No public mirror of the exact
# official zip (same md5) is known to us, so the list holds the official URL only; pass
# --url (repeatable) to use a mirror or an institutional copy.
DEFAULT_URLS: tuple[str, ...] = (OFFICIAL_URL,)
MIR1K_MD5 = "3a4e5acd740110ae481a836460dabb6a"
ARCHIVE_NAME = "MIR-1K.zip"
DATASET_DIR = "MIR-1K"
WAV_DIR = "Wavfile"
MARKER = ".verified"
MARKER_FORMAT = "hourglass-sep-mir1k/1"
EXPECTED_SR = 16000
EXPECTED_CHANNELS = 2
EXPECTED_SUBTYPE = "PCM_16"
CHUNK = 1 << 16
USER_AGENT = "hourglass-sep (MIR-1K fetch; python urllib)"
RETRY_BACKOFF = 2.0  # seconds before the first retry of a URL; doubles, at most 30 s
_MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")


@dataclasses.dataclass
class FetchResult:
    """What ``fetch`` produced (``wav_dir`` is what ``fetch_mir1k`` returns)."""

    wav_dir: Path
    clips: int
    seconds_audio: float
    source: str
    md5: str | None
    already: bool  # True when a consistent marker was found and nothing was done
    elapsed: float
    archive: Path | None = None  # the verified download kept in dest, if any
    manifest_checked: int = 0


# --------------------------------------------------------------------------- helpers


def md5sum(path: str | os.PathLike, progress: bool = False) -> str:
    """Hex md5 of a file."""
    path = Path(path)
    h = hashlib.md5()
    bar = _bar(path.stat().st_size, 0, f"md5 {path.name}", progress)
    with open(path, "rb") as f, bar:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _bar(total: int | None, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not enabled,
        leave=False,
        dynamic_ncols=True,
    )


def _normalise_md5(md5: str | None) -> str | None:
    if md5 is None or str(md5).strip().lower() in ("", "none", "skip"):
        return None
    md5 = str(md5).strip().lower()
    if not _MD5_RE.match(md5):
        raise UserError(
            f"--md5 {md5!r}: not an md5 (32 hex digits); or pass 'none' to skip the archive check"
        )
    return md5


def read_manifest(path: str | os.PathLike) -> dict[str, str]:
    """``clip -> wav_md5`` from a TSV with (at least) the columns ``clip`` and ``wav_md5``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: manifest not found (expected a TSV with columns clip, wav_md5)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        cols = reader.fieldnames or []
        if "clip" not in cols or "wav_md5" not in cols:
            raise UserError(
                f"{path}: not an md5 manifest: columns are {cols}, need 'clip' and 'wav_md5'"
            )
        out: dict[str, str] = {}
        for i, row in enumerate(reader, start=2):
            clip, md5 = (row.get("clip") or "").strip(), (row.get("wav_md5") or "").strip().lower()
            if not clip:
                continue
            if not _MD5_RE.match(md5):
                raise UserError(f"{path}, line {i}: wav_md5 {md5!r} of clip {clip!r} is not an md5")
            out[Path(clip).stem] = md5
    if not out:
        raise UserError(f"{path}: the manifest lists no clips")
    return out


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


# --------------------------------------------------------------------------- download


class _DownloadError(Exception):
    """One URL failed; ``transient`` errors are retried (resuming) on the same URL."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, BaseException):
            return _describe(reason)
        return str(reason)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed early ({len(exc.partial)} bytes of the last block read)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) of a ``Content-Range: bytes a-b/total`` header (None when absent)."""
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)", value or "")
    if m:
        return int(m[1]), (None if m[2] == "*" else int(m[2]))
    m = re.match(r"\s*bytes\s+\*/(\d+)", value or "")
    if m:
        return None, int(m[1])
    return None, None


def _download_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Fetch ``url`` into ``part``, resuming from its current size; raise ``_DownloadError``."""
    offset = part.stat().st_size if part.exists() else 0
    resp = _open_url(url, part, offset, timeout)
    if resp is None:
        return
    with resp:
        offset, mode, total = _resume_point(resp, url, part, offset)
        if "text/html" in resp.headers.get("Content-Type", "").lower():
            log.warning(
                "%s: the server sent text/html (an error or login page?); the md5 check will tell",
                url,
            )
        got = _copy_body(resp, part, mode, offset, total, progress)
    if total is not None and got < total:
        raise _DownloadError(f"connection closed after {got} of {total} bytes", transient=True)


def _open_url(url: str, part: Path, offset: int, timeout: float):
    """The response for ``url`` (asking for the bytes from ``offset`` on), or None when a
    refused resume shows that ``part`` is already complete.

    Errors become ``_DownloadError``; ``transient`` ones (timeouts, 5xx) are worth a retry.
    """
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        req = urllib.request.Request(url, headers=headers)
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            _, total = _content_range(exc.headers.get("Content-Range"))
            exc.close()
            if total is not None and total == offset:
                log.info(
                    "%s: the partial download is already complete (%d bytes)", part.name, offset
                )
                return None
            log.info("%s: server refused to resume at byte %d; restarting", url, offset)
            part.unlink()
            raise _DownloadError(
                f"cannot resume at byte {offset} (HTTP 416); restarting", transient=True
            ) from None
        exc.close()
        raise _DownloadError(
            _describe(exc), transient=exc.code in (408, 429, 500, 502, 503, 504)
        ) from None
    except ValueError as exc:  # unknown url type, malformed URL
        raise _DownloadError(f"not a usable URL ({exc})") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        # connection refused, DNS failure, TLS errors, timeouts while connecting
        transient = isinstance(exc, (socket.timeout, TimeoutError)) or (
            isinstance(exc, urllib.error.URLError)
            and isinstance(exc.reason, (socket.timeout, TimeoutError))
        )
        raise _DownloadError(_describe(exc), transient=transient) from None


def _resume_point(resp, url: str, part: Path, offset: int) -> tuple[int, str, int | None]:
    """(first byte of the body, file mode, total size or None) from the response headers.

    A server that ignores the Range request sends the whole file: the part is rewritten
    from byte 0 rather than appended to (which would corrupt it).
    """
    status = resp.status if getattr(resp, "status", None) is not None else 200
    length = resp.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if offset and status == 206:
        start, total = _content_range(resp.headers.get("Content-Range"))
        if start != offset:
            part.unlink()
            raise _DownloadError(
                f"server answered the resume request at byte {offset} with range starting "
                f"at {start}; restarting",
                transient=True,
            )
        mode = "ab"
        log.info("%s: resuming at byte %d of %s", url, offset, total if total is not None else "?")
    else:
        if offset:
            log.info("%s: server ignored the Range request; restarting from byte 0", url)
        offset, mode = 0, "wb"
        total = length
    if total is None and length is not None:
        total = offset + length
    return offset, mode, total


def _copy_body(resp, part: Path, mode: str, offset: int, total: int | None, progress: bool) -> int:
    """Stream the body into ``part``; returns the bytes it then holds.

    Network failures are transient ``_DownloadError``s (resumed); a failing disk is the
    user's to fix (``UserError``).
    """
    got = offset
    bar = _bar(total, offset, ARCHIVE_NAME, progress)
    try:
        f = open(part, mode)
    except OSError as exc:
        raise UserError(f"{part}: cannot write the download ({exc.strerror or exc})") from None
    with f, bar:
        while True:
            try:
                chunk = resp.read(CHUNK)
            except (OSError, http.client.HTTPException) as exc:  # timeout, reset, IncompleteRead
                raise _DownloadError(
                    f"{_describe(exc)} after {got} bytes", transient=True
                ) from None
            if not chunk:
                break
            try:
                f.write(chunk)
            except OSError as exc:  # disk full, permissions: not the network's fault
                raise UserError(
                    f"{part}: cannot write the download ({exc.strerror or exc})"
                ) from None
            got += len(chunk)
            bar.update(len(chunk))
    return got


def download(
    url: str,
    target: str | os.PathLike,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    retries: int = 3,
) -> Path:
    """Download ``url`` to ``target`` via ``target.part`` (resumed if present), checking ``md5``.

    Transient failures (timeouts, dropped connections) are retried up to ``retries`` times,
    resuming where the partial file ends.  On an md5 mismatch the file is moved to
    ``target.bad``; if the download had been resumed it is first retried once from scratch.
    Raises ``_DownloadError`` (one line, for the caller's list of failed URLs).
    """
    target = Path(target)
    part = target.with_name(target.name + ".part")
    md5 = _normalise_md5(md5)
    attempt, restarted = 0, False
    while True:
        resumed = part.exists() and part.stat().st_size > 0
        try:
            _download_once(url, part, timeout, progress)
        except _DownloadError as exc:
            attempt += 1
            if exc.transient and attempt <= retries:
                log.warning("%s: %s; retrying (%d/%d)", url, exc, attempt, retries)
                time.sleep(min(RETRY_BACKOFF * 2 ** (attempt - 1), 30.0))
                continue
            raise
        if md5 is not None:
            got = md5sum(part, progress=False)
            if got != md5:
                if resumed and not restarted:
                    log.warning(
                        "%s: md5 mismatch after resuming; downloading again from scratch", url
                    )
                    part.unlink()
                    restarted = True
                    continue
                bad = target.with_name(target.name + ".bad")
                size = part.stat().st_size
                os.replace(part, bad)
                raise _DownloadError(
                    f"md5 mismatch: expected {md5}, got {got} ({size} bytes); "
                    f"the file was moved aside to {bad} and not used"
                )
        os.replace(part, target)
        return target


# --------------------------------------------------------------------------- archive


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member is unsafe to extract, or None."""
    name = info.filename
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind and stat.S_ISLNK(mode):
        return "is a symbolic link"
    if kind and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "is a special file (device, fifo or socket)"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "has an absolute path"
    if ".." in norm.split("/"):
        return "has a '..' component (it would land outside the destination)"
    if "\x00" in norm:
        return "has a NUL byte in its name"
    return None


def _wav_prefix(names: Iterable[str]) -> tuple[str | None, list[str]]:
    """The folder prefix holding ``Wavfile/*.wav`` (``'MIR-1K/'``, ``''``, ...) and its members."""
    groups: dict[str, list[str]] = {}
    for name in names:
        p = PurePosixPath(name.replace("\\", "/"))
        if p.suffix.lower() != ".wav" or p.name.startswith(".") or "__MACOSX" in p.parts:
            continue
        if len(p.parts) >= 2 and p.parts[-2] == WAV_DIR and len(p.parts) <= 3:
            prefix = "/".join(p.parts[:-2])
            groups.setdefault(prefix + "/" if prefix else "", []).append(name)
    if not groups:
        return None, []
    prefix = max(groups, key=lambda k: (len(groups[k]), k == f"{DATASET_DIR}/"))
    return prefix, groups[prefix]


def _found_instead(names: Sequence[str], limit: int = 8) -> str:
    tops: dict[str, int] = {}
    for n in names:
        parts = [x for x in n.replace("\\", "/").split("/") if x]
        if not parts:
            continue
        key = "/".join(parts[:2]) + ("/" if len(parts) > 2 else "")
        tops[key] = tops.get(key, 0) + 1
    if not tops:
        return "nothing"
    items = [f"{k} ({v} entries)" if v > 1 else k for k, v in sorted(tops.items())[:limit]]
    more = len(tops) - limit
    return ", ".join(items) + (f", and {more} more" if more > 0 else "")


def _members_to_extract(
    archive: Path, infos: list[zipfile.ZipInfo], extract_all: bool
) -> tuple[str, set[str], list[zipfile.ZipInfo]]:
    """(folder prefix of Wavfile/, names of its wavs, members to extract) of a MIR-1K zip.

    Every member is checked before anything is written: one unsafe member (absolute path,
    ``..``, symlink, device) means the archive is not the release, so none of it is trusted.
    """
    for info in infos:
        problem = _member_problem(info)
        if problem:
            raise UserError(
                f"{archive}: refusing to extract: member {info.filename!r} {problem}; "
                "this is not a well-formed MIR-1K archive (nothing was extracted)"
            )
    prefix, wav_names = _wav_prefix(i.filename for i in infos if not i.is_dir())
    if prefix is None:
        raise UserError(
            f"{archive}: no {WAV_DIR}/ folder with .wav clips in the archive; found instead: "
            f"{_found_instead([i.filename for i in infos])}"
        )
    wanted = set(wav_names)
    chosen = [
        i
        for i in infos
        if not i.is_dir()
        and (
            i.filename in wanted
            or (extract_all and i.filename.replace("\\", "/").startswith(prefix))
        )
        and "__MACOSX" not in i.filename
    ]
    return prefix, wanted, chosen


def safe_extract(
    archive: str | os.PathLike, out_root: str | os.PathLike, extract_all: bool = False
) -> tuple[Path, list[Path]]:
    """Extract the ``Wavfile/*.wav`` members of a MIR-1K zip into ``out_root/MIR-1K/Wavfile``.

    Every member of the archive is checked first; one with an absolute path, a ``..``
    component, or that is a symlink/special file makes the whole archive refused (``UserError``
    naming the member) before anything is written.  With ``extract_all`` the other folders
    (labels, lyrics, ...) are extracted too.  Returns (dataset dir, extracted wav paths).
    """
    archive = Path(archive)
    out_root = Path(out_root)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise UserError(
            f"{archive}: not a zip archive ({exc}); expected the MIR-1K release (MIR-1K.zip)"
        ) from None
    except OSError as exc:
        raise UserError(f"{archive}: cannot open ({exc.strerror or exc})") from None
    with zf:
        prefix, wanted, chosen = _members_to_extract(archive, zf.infolist(), extract_all)
        need = sum(i.file_size for i in chosen)
        free = shutil.disk_usage(out_root).free
        if need > free:
            raise UserError(
                f"{archive}: extracting needs {_human(need)} but {out_root} has only "
                f"{_human(free)} free; free some space or choose another --dest"
            )
        root = out_root / DATASET_DIR
        base = root.resolve()
        paths: list[Path] = []
        for info in chosen:
            rel = info.filename.replace("\\", "/")[len(prefix) :]
            target = root / rel
            if not str(target.resolve()).startswith(str(base) + os.sep):  # belt and braces
                raise UserError(
                    f"{archive}: refusing to extract: member {info.filename!r} would leave {root}"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                raise UserError(
                    f"{archive}: member {info.filename!r} is corrupt ({exc}); "
                    "download the archive again"
                ) from None
            if info.filename in wanted:
                paths.append(target)
    return root, sorted(paths)


# --------------------------------------------------------------------------- validation


def validate_clips(
    paths: Sequence[Path], manifest: dict[str, str] | None = None, origin: str | None = None
) -> tuple[int, float, int]:
    """Check every clip (16 kHz, 16-bit PCM, stereo, readable, md5 when in ``manifest``).

    Returns (clips, seconds of audio, clips checked against the manifest).  Raises
    ``UserError`` naming the first offending file (and how many more there are).
    """
    where = f"{origin}: " if origin else ""
    if not paths:
        raise UserError(f"{where}no .wav clips in {WAV_DIR}/")
    bad: list[str] = []
    seconds = 0.0
    checked = 0
    for p in paths:
        shown = f"{WAV_DIR}/{p.name}"
        try:
            info = sf.info(str(p))
        except Exception as exc:  # soundfile raises several types
            bad.append(f"{shown}: unreadable as audio ({str(exc).strip() or type(exc).__name__})")
            continue
        problems = []
        if info.format != "WAV":
            problems.append(f"format {info.format}, expected WAV")
        if info.samplerate != EXPECTED_SR:
            problems.append(f"{info.samplerate} Hz, expected {EXPECTED_SR} Hz")
        if info.channels != EXPECTED_CHANNELS:
            problems.append(
                f"{info.channels} channel(s), expected {EXPECTED_CHANNELS} "
                "(left accompaniment, right voice)"
            )
        if info.subtype != EXPECTED_SUBTYPE:
            problems.append(
                f"sample format {info.subtype}, expected 16-bit PCM ({EXPECTED_SUBTYPE})"
            )
        if info.frames <= 0:
            problems.append("no samples")
        if problems:
            bad.append(f"{shown}: " + "; ".join(problems))
            continue
        if manifest is not None and p.stem in manifest:
            got = md5sum(p)
            checked += 1
            if got != manifest[p.stem]:
                bad.append(f"{shown}: md5 {got} does not match the manifest's {manifest[p.stem]}")
                continue
        seconds += info.frames / info.samplerate
    if bad:
        more = f" (and {len(bad) - 1} more bad clip(s))" if len(bad) > 1 else ""
        raise UserError(
            f"{where}{bad[0]}{more}; MIR-1K clips are 16 kHz, 16-bit PCM, stereo WAV — "
            "this is not (an intact copy of) the MIR-1K release; nothing was installed"
        )
    return len(paths), seconds, checked


# --------------------------------------------------------------------------- marker


def read_marker(dataset_dir: str | os.PathLike) -> dict | None:
    """The marker of a completed fetch if it is there and consistent with the files, else None."""
    dataset_dir = Path(dataset_dir)
    marker = dataset_dir / MARKER
    wav_dir = dataset_dir / WAV_DIR
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT or not wav_dir.is_dir():
        return None
    wavs = [
        p for p in wav_dir.iterdir() if p.suffix.lower() == ".wav" and not p.name.startswith(".")
    ]
    if len(wavs) != data.get("clips") or sum(p.stat().st_size for p in wavs) != data.get("bytes"):
        log.warning(
            "%s: marker does not match the files (clips or sizes changed); fetching again", marker
        )
        return None
    return data


def _write_marker(dataset_dir: Path, info: dict) -> None:
    tmp = dataset_dir / (MARKER + ".tmp")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, dataset_dir / MARKER)


# --------------------------------------------------------------------------- orchestration


@contextlib.contextmanager
def _lock(dest: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(dest / f".{DATASET_DIR}.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(
                f"{dest}: another fetch-mir1k is running on this folder; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _cleanup_stale(dest: Path) -> None:
    """Remove temporary folders left by runs that were killed (their pid is gone)."""
    for p in dest.glob(f".{DATASET_DIR}.tmp-*"):
        m = re.match(rf"^\.{re.escape(DATASET_DIR)}\.tmp-(\d+)-", p.name)
        if not m or not p.is_dir():
            continue
        try:
            os.kill(int(m[1]), 0)
            continue  # still running (the lock protects us from it anyway)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        log.info("removing %s left by an interrupted run", p)
        shutil.rmtree(p, ignore_errors=True)


def _local_wav_dir(folder: Path) -> Path:
    for cand in (folder / DATASET_DIR / WAV_DIR, folder / WAV_DIR):
        if cand.is_dir():
            return cand
    if folder.name == WAV_DIR:
        return folder
    try:
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    except OSError as exc:
        raise UserError(f"{folder}: cannot list ({exc.strerror or exc})") from None
    shown = ", ".join(entries[:10]) + (
        f", and {len(entries) - 10} more" if len(entries) > 10 else ""
    )
    raise UserError(
        f"{folder}: no {WAV_DIR}/ folder (looked for {folder}/{DATASET_DIR}/{WAV_DIR} and "
        f"{folder}/{WAV_DIR}); found instead: {shown or 'an empty folder'}; point --archive at "
        "the MIR-1K folder or at MIR-1K.zip"
    )


def _import_folder(src_wav: Path, out_root: Path) -> tuple[Path, list[Path]]:
    wavs = sorted(
        p for p in src_wav.iterdir() if p.suffix.lower() == ".wav" and not p.name.startswith(".")
    )
    if not wavs:
        kinds: dict[str, int] = {}
        for p in src_wav.iterdir():
            key = p.suffix.lower() or p.name
            kinds[key] = kinds.get(key, 0) + 1
        found = ", ".join(f"{n} {k} file(s)" for k, n in sorted(kinds.items())[:10])
        raise UserError(
            f"{src_wav}: no .wav clips; found instead: {found or 'an empty folder'} "
            "(MIR-1K clips are .wav files; convert or restore them to the original .wav first)"
        )
    root = out_root / DATASET_DIR
    dst = root / WAV_DIR
    dst.mkdir(parents=True)
    need = sum(p.stat().st_size for p in wavs)
    free = shutil.disk_usage(out_root).free
    if need > free:
        raise UserError(
            f"{src_wav}: copying needs {_human(need)} but {out_root} has only {_human(free)} free"
        )
    out = []
    for p in wavs:
        if not p.is_file():
            raise UserError(f"{p}: not a regular file")
        shutil.copyfile(p, dst / p.name)
        out.append(dst / p.name)
    return root, out


def _swap_into_place(new_root: Path, final: Path) -> None:
    """Rename ``new_root`` onto ``final``; an older ``final`` is moved aside then removed."""
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(new_root, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclasses.dataclass
class _Source:
    """Where this run takes the clips from: a local folder, a local zip or a downloaded zip."""

    kind: str  # "directory" | "archive" | "url" (recorded in the marker)
    desc: str  # the folder, file or URL, for messages and the marker
    md5: str | None = None  # the zip's md5 when it was checked
    zip_path: Path | None = None
    local_dir: Path | None = None


def fetch(
    dest: str | os.PathLike,
    urls: Sequence[str] | None = None,
    archive: str | os.PathLike | None = None,
    md5: str | None = MIR1K_MD5,
    manifest: str | os.PathLike | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    retries: int = 3,
    extract_all: bool = False,
    keep_archive: bool = True,
) -> FetchResult:
    """Make ``dest/MIR-1K/Wavfile`` hold verified MIR-1K clips; see the module docstring.

    ``md5`` is the expected md5 of the zip (downloaded or ``archive``); ``None`` or ``'none'``
    skips that check (then give ``manifest``).  ``archive`` may be a zip or a folder.
    """
    t0 = time.monotonic()
    dest = Path(dest).expanduser()
    md5 = _normalise_md5(md5)
    manifest_md5 = read_manifest(manifest) if manifest is not None else None
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"{dest}: cannot create the destination folder ({exc.strerror or exc})"
        ) from None
    final = dest / DATASET_DIR
    with _lock(dest):
        marker = read_marker(final)
        if marker is not None:
            return _already_fetched(final, marker, t0)
        _cleanup_stale(dest)
        if (final.exists() or final.is_symlink()) and _adopt_in_place(dest, final, archive):
            return _adopt(final, manifest, manifest_md5, t0)
        if archive is not None:
            src = _local_source(archive, md5, progress)
        else:
            src = _download_source(dest, final, urls, md5, progress, timeout, retries)
        clips, seconds, checked = _install(
            src, dest, final, md5, manifest, manifest_md5, extract_all
        )
        kept = src.zip_path if src.kind == "url" else None
        if kept is not None and not keep_archive:
            kept.unlink(missing_ok=True)
            kept = None
    return FetchResult(
        wav_dir=final / WAV_DIR,
        clips=clips,
        seconds_audio=seconds,
        source=src.desc,
        md5=src.md5,
        already=False,
        elapsed=time.monotonic() - t0,
        archive=kept,
        manifest_checked=checked,
    )


def _already_fetched(final: Path, marker: dict, t0: float) -> FetchResult:
    """The result of an earlier run whose marker still matches its files (nothing to do)."""
    return FetchResult(
        wav_dir=final / WAV_DIR,
        clips=int(marker["clips"]),
        seconds_audio=float(marker.get("seconds_audio", 0.0)),
        source=str(marker.get("source")),
        md5=marker.get("md5"),
        already=True,
        elapsed=time.monotonic() - t0,
        manifest_checked=int(marker.get("manifest_checked", 0)),
    )


def _adopt_in_place(dest: Path, final: Path, archive: str | os.PathLike | None) -> bool:
    """Decide what to do with a ``final`` folder that has no valid marker.

    True: ``--archive`` names that folder itself, so it is checked and adopted in place.
    False: it is an earlier install whose files changed; it is replaced once a new copy is
    verified.  Raises when replacing it would destroy the source or data we did not install.
    """
    arch = Path(archive).expanduser().resolve() if archive is not None else None
    fin = final.resolve()
    if arch is not None and arch.is_dir() and arch in (dest.resolve(), fin, fin / WAV_DIR):
        return True
    if arch is not None and (arch == fin or fin in arch.parents):
        raise UserError(
            f"--archive {archive} lies inside {final}, which this run would replace; "
            "move it elsewhere first"
        )
    if not (final / MARKER).exists():
        raise UserError(
            f"{final} exists but was not installed by fetch-mir1k (no {MARKER} marker); to "
            f"check it and adopt it as it is, run with --archive {final}; to fetch afresh, "
            "remove or rename it"
        )
    return False


def _local_source(archive: str | os.PathLike, md5: str | None, progress: bool) -> _Source:
    """A MIR-1K folder or zip the user already has; a zip must match ``md5`` (if given)."""
    archive = Path(archive).expanduser()
    if not archive.exists():
        raise UserError(f"--archive {archive}: no such file or folder")
    if archive.is_dir():
        return _Source("directory", str(archive.resolve()), local_dir=_local_wav_dir(archive))
    got = None
    if md5 is not None:
        got = md5sum(archive, progress=progress)
        if got != md5:
            raise UserError(
                f"{archive}: md5 mismatch: expected {md5}, got {got}; the file was left "
                "untouched and not used. Fetch the official MIR-1K.zip again, or if you trust "
                f"this copy (e.g. a repack), pass --md5 {got} (better together with --manifest, "
                "which checks every clip)"
            )
    return _Source("archive", str(archive.resolve()), md5=got, zip_path=archive)


def _download_source(
    dest: Path,
    final: Path,
    urls: Sequence[str] | None,
    md5: str | None,
    progress: bool,
    timeout: float,
    retries: int,
) -> _Source:
    """``dest/MIR-1K.zip``: an earlier verified download, else the first URL that works.

    Every URL's failure is collected, so the error lists them all at once.
    """
    url_list = list(urls) if urls else list(DEFAULT_URLS)
    target = dest / ARCHIVE_NAME
    reused = _reuse_download(dest, target, md5, progress)
    if reused is not None:
        return reused
    errors = []
    for url in url_list:
        log.info("downloading %s", url)
        try:
            zip_path = download(
                url, target, md5=md5, progress=progress, timeout=timeout, retries=retries
            )
        except _DownloadError as exc:
            log.warning("%s: %s", url, exc)
            errors.append(f"  {url}: {exc}")
            continue
        (dest / f".{ARCHIVE_NAME}.source").write_text(url + "\n", encoding="utf-8")
        return _Source("url", url, md5=md5, zip_path=zip_path)
    part = target.with_name(target.name + ".part")
    left = (
        f" A partial download was kept in {part} ({_human(part.stat().st_size)}); "
        "the next run resumes it."
        if part.exists() and part.stat().st_size
        else ""
    )
    raise UserError(
        f"could not download MIR-1K from any of {len(url_list)} URL(s):\n"
        + "\n".join(errors)
        + "\n"
        f"Nothing was installed in {final}.{left} If you have no network, copy MIR-1K.zip "
        "(or an extracted MIR-1K folder) here from elsewhere and run again with --archive PATH"
        + ("" if urls else ", or give a mirror with --url URL")
    )


def _reuse_download(dest: Path, target: Path, md5: str | None, progress: bool) -> _Source | None:
    """The zip an earlier run downloaded, if its md5 still matches; a bad one is moved aside."""
    if not target.exists():
        return None
    got = md5sum(target, progress=progress) if md5 is not None else None
    if md5 is None or got == md5:
        log.info("%s: reusing the verified download", target)
        return _Source("url", _previous_source(dest) or str(target), md5=got, zip_path=target)
    bad = target.with_name(target.name + ".bad")
    os.replace(target, bad)
    log.warning("%s: md5 %s is not the expected %s; moved aside to %s", target, got, md5, bad)
    return None


def _install(
    src: _Source,
    dest: Path,
    final: Path,
    md5: str | None,
    manifest: str | os.PathLike | None,
    manifest_md5: dict[str, str] | None,
    extract_all: bool,
) -> tuple[int, float, int]:
    """Extract or copy into a hidden folder, validate, write the marker, swap into ``final``.

    Returns (clips, seconds of audio, clips checked against the manifest).  A failure
    leaves no ``MIR-1K/`` folder that could pass for good data.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{DATASET_DIR}.tmp-{os.getpid()}-", dir=dest))
    try:
        if src.local_dir is not None:
            root, wavs = _import_folder(src.local_dir, tmp)
        else:
            root, wavs = safe_extract(src.zip_path, tmp, extract_all=extract_all)
        clips, seconds, checked = validate_clips(wavs, manifest_md5, origin=src.desc)
        if manifest_md5 is not None:
            missing = len(set(manifest_md5) - {p.stem for p in wavs})
            log.info(
                "manifest: %d clip(s) checked by md5, %d listed clip(s) not in the source",
                checked,
                missing,
            )
        info = _marker_info(
            src.desc, src.kind, src.md5, md5, manifest, checked, clips, wavs, seconds
        )
        _write_marker(root, info)  # last file written; then the whole folder appears at once
        _swap_into_place(root, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return clips, seconds, checked


def _marker_info(
    source: str,
    kind: str,
    md5: str | None,
    md5_expected: str | None,
    manifest: str | os.PathLike | None,
    checked: int,
    clips: int,
    wavs: Sequence[Path],
    seconds: float,
) -> dict:
    """The ``.verified`` marker's content: provenance and what was checked."""
    return {
        "format": MARKER_FORMAT,
        "source": source,
        "kind": kind,
        "md5": md5,
        "md5_expected": md5_expected,
        "manifest": str(Path(manifest).resolve()) if manifest is not None else None,
        "manifest_checked": checked,
        "clips": clips,
        "bytes": sum(p.stat().st_size for p in wavs),
        "seconds_audio": round(seconds, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _adopt(final: Path, manifest, manifest_md5: dict[str, str] | None, t0: float) -> FetchResult:
    """Validate an existing ``final/Wavfile`` in place and write its marker (nothing is copied)."""
    wav_dir = final / WAV_DIR
    if not wav_dir.is_dir():
        _local_wav_dir(final)  # raises, naming what is there instead
    wavs = sorted(
        p for p in wav_dir.iterdir() if p.suffix.lower() == ".wav" and not p.name.startswith(".")
    )
    clips, seconds, checked = validate_clips(wavs, manifest_md5, origin=str(final))
    source = str(final.resolve())
    info = _marker_info(source, "in place", None, None, manifest, checked, clips, wavs, seconds)
    _write_marker(final, info)
    return FetchResult(
        wav_dir, clips, seconds, source, None, False, time.monotonic() - t0, None, checked
    )


def _previous_source(dest: Path) -> str | None:
    try:
        return (dest / f".{ARCHIVE_NAME}.source").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def fetch_mir1k(
    dest: str | os.PathLike,
    urls: Sequence[str] | None = None,
    archive: str | os.PathLike | None = None,
    md5: str | None = MIR1K_MD5,
    manifest: str | os.PathLike | None = None,
    progress: bool = True,
    **kwargs,
) -> Path:
    """Fetch/import, verify and install MIR-1K under ``dest``; return ``dest/MIR-1K/Wavfile``."""
    return fetch(
        dest, urls=urls, archive=archive, md5=md5, manifest=manifest, progress=progress, **kwargs
    ).wav_dir


# --------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dest",
        required=True,
        help="folder that receives MIR-1K/Wavfile/ (and the downloaded zip)",
    )
    p.add_argument(
        "--url",
        action="append",
        default=None,
        metavar="URL",
        help="download from URL (repeat for mirrors, tried in order); replaces the default "
        f"list {list(DEFAULT_URLS)}",
    )
    p.add_argument(
        "--archive",
        default=None,
        metavar="PATH",
        help="use a local MIR-1K.zip or a MIR-1K folder (holding Wavfile/ or MIR-1K/Wavfile/) "
        "instead of downloading",
    )
    p.add_argument(
        "--md5",
        default=MIR1K_MD5,
        help="expected md5 of the zip (downloaded or --archive); 'none' skips it "
        "(then use --manifest)",
    )
    p.add_argument(
        "--manifest",
        default=None,
        metavar="TSV",
        help="per-clip md5 index (TSV with columns clip, wav_md5); every extracted clip it "
        "lists is checked",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="network timeout in seconds (connect and each read)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        help="retries per URL after a dropped connection (resuming)",
    )
    p.add_argument(
        "--extract-all",
        action="store_true",
        help="also extract the label folders, not only Wavfile/",
    )
    p.add_argument(
        "--delete-archive",
        action="store_true",
        help="delete the downloaded zip after a successful install",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.url and args.archive:
        raise UserError("give either --url (download) or --archive (local copy), not both")
    res = fetch(
        args.dest,
        urls=args.url,
        archive=args.archive,
        md5=args.md5,
        manifest=args.manifest,
        progress=not args.no_progress,
        timeout=args.timeout,
        retries=args.retries,
        extract_all=args.extract_all,
        keep_archive=not args.delete_archive,
    )
    if res.already:
        print(
            f"{res.wav_dir.parent}: already fetched and verified ({res.clips} clips from "
            f"{res.source}); nothing to do"
        )
        return 0
    checks = []
    if res.md5:
        checks.append("archive md5 ok")
    if res.manifest_checked:
        checks.append(f"{res.manifest_checked} clip md5s ok")
    print(
        f"{res.wav_dir}: {res.clips} clips, {res.seconds_audio / 60:.1f} min of audio, "
        f"from {res.source} ({', '.join(checks + ['format ok'])}), {res.elapsed:.1f} s"
    )
    return 0
