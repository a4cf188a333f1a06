"""Fetch a published file once, keep it, and check it: the optional download of a point source.

The file lands where the source's dataset reads it. It is streamed to ``<file>.part`` while its
SHA-256 is computed, then renamed, so an interrupted download never looks complete. With a
pinned ``sha256`` a file that differs (a new release under the same URL, a corrupted transfer)
is refused with both digests; without one, the digest is logged so the user can pin it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kedro.io import DatasetError

logger = logging.getLogger(__name__)

#: Bytes read at a time while streaming a download.
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class DownloadSpec:
    """Where a source's file comes from.

    Attributes:
        url: Direct download URL (http or https).
        sha256: Expected SHA-256 (hex); ``None`` accepts any and logs what arrived.
        timeout_s: Seconds without an answer before giving up.
    """

    url: str
    sha256: str | None = None
    timeout_s: float = 60.0


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_downloaded(spec: DownloadSpec, destination: Path, source: str) -> Path:
    """Make ``destination`` hold the file ``spec`` describes, fetching it only if needed.

    Args:
        spec: URL and optional checksum.
        destination: Where the source's dataset reads the file.
        source: The point source's name, for messages.

    Returns:
        ``destination``.

    Raises:
        DatasetError: If the download fails or the file's checksum differs from the pinned one.
    """
    if destination.exists():
        if spec.sha256 is None or file_sha256(destination) == spec.sha256.lower():
            return destination
        logger.warning(
            "%s: %s differs from the pinned sha256; fetching %s again", source, destination,
            spec.url,
        )  # fmt: skip
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    digest = hashlib.sha256()
    try:
        with (
            urllib.request.urlopen(spec.url, timeout=spec.timeout_s) as response,
            partial.open("wb") as file,
        ):
            while chunk := response.read(CHUNK_BYTES):
                digest.update(chunk)
                file.write(chunk)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise DatasetError(
            f"{source}: downloading {spec.url} failed ({error}); check the URL and the "
            f"connection, or put the file at {destination} yourself"
        ) from error
    got = digest.hexdigest()
    if spec.sha256 is not None and got != spec.sha256.lower():
        partial.unlink(missing_ok=True)
        raise DatasetError(
            f"{source}: {spec.url} has sha256 {got}, not the pinned {spec.sha256}: the "
            "publisher may have released a new version under the same URL. Check it, then pin "
            f"the new digest in point_sources.sources.{source}.download.sha256"
        )
    os.replace(partial, destination)
    if spec.sha256 is None:
        logger.info(
            "%s: downloaded %s to %s (sha256 %s); pin it with download.sha256 to notice a "
            "changed release",
            source, spec.url, destination, got,
        )  # fmt: skip
    return destination
