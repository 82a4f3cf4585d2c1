"""Download once into the user's cache, verified by SHA-256, failing fast when offline.

A benchmark must never hang on a dead network: connections get a short timeout, and a
failed attempt is remembered for a day (a marker file) so that an offline machine does
not pay the timeout on every run. Downloads land in a temporary file and are renamed
into place only after the checksum matches, so the cache never holds a partial or
tampered file.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.request
from pathlib import Path

from gpuscout.errors import GpuscoutError

DEFAULT_TIMEOUT_S = 3.0
RETRY_AFTER_S = 24 * 3600
OFFLINE_ENV = "GPUSCOUT_OFFLINE"
_CHUNK = 1 << 20


class DownloadError(GpuscoutError):
    """The file could not be fetched (offline, HTTP error, timeout)."""


class ChecksumError(GpuscoutError):
    """A file's SHA-256 is not the published one: it is not used."""


def data_cache_dir() -> Path:
    """``<gpuscout data dir>/datasets``; ``GPUSCOUT_HOME`` is honoured."""
    from gpuscout.store.paths import default_data_dir

    return default_data_dir() / "datasets"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, sha256: str) -> None:
    got = sha256_file(path)
    if got != sha256.lower():
        raise ChecksumError(
            f"{path.name}: SHA-256 {got[:16]}... is not the published {sha256[:16]}...",
            f"delete {path} and let gpuscout fetch it again, or check where it came from",
        )


def _marker(dest_dir: Path) -> Path:
    return dest_dir / ".download-failed"


def recently_failed(dest_dir: Path, now: float | None = None) -> bool:
    marker = _marker(dest_dir)
    try:
        age = (time.time() if now is None else now) - marker.stat().st_mtime
    except OSError:
        return False
    return age < RETRY_AFTER_S


def download(
    url: str,
    dest: Path,
    sha256: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    opener: urllib.request.OpenerDirector | None = None,
) -> Path:
    """Fetch ``url`` to ``dest`` unless a verified copy is there; ChecksumError or
    DownloadError otherwise. ``opener`` is the seam tests use instead of the network."""
    if dest.is_file():
        verify(dest, sha256)
        return dest
    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        raise DownloadError(f"not downloading {url}: {OFFLINE_ENV} is set")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if opener is None and recently_failed(dest.parent):
        raise DownloadError(
            f"not downloading {url}: the last attempt failed less than a day ago",
            f"delete {_marker(dest.parent)} to retry now",
        )
    tmp = dest.with_name(dest.name + ".part")
    try:
        open_url = opener.open if opener is not None else urllib.request.urlopen
        with open_url(url, timeout=timeout_s) as resp, tmp.open("wb") as out:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
    except (OSError, ValueError) as exc:  # URLError, timeouts and HTTP errors are OSErrors
        tmp.unlink(missing_ok=True)
        if opener is None:
            _marker(dest.parent).touch()
        raise DownloadError(f"cannot download {url}: {exc}") from None
    try:
        verify(tmp, sha256)
    except ChecksumError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)
    _marker(dest.parent).unlink(missing_ok=True)
    return dest
