"""Which version of a landing file is ingested: its content (sha256), not its timestamp (no Dagster import).

A file touched, or copied back with the same bytes, is the same version and is not ingested again; a
file whose bytes changed under the same name is a new version and is. Hashing reads the whole file,
so a digest is remembered per (name, size, mtime_ns) and a file is hashed again only when these change.
A landing object in the cluster profile's bucket (file_store.S3LandingFile) is versioned the same way,
its stat key made of its size and ETag (which a re-upload of the same bytes keeps), its bytes streamed
through the hash. One definition of "already ingested" (`already_ingested`) serves the landing sensor
and `ecom-assets run`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

HASH_BLOCK_BYTES = 1 << 20
_CONTENT = ":sha256:"


class RemoteLandingFile(Protocol):
    """A landing file that is not a local path: it says its own stat key and hashes its own bytes."""

    @property
    def name(self) -> str: ...

    @property
    def stat_key(self) -> str: ...

    def digest(self) -> str:
        """sha256 of its bytes; FileNotFoundError when it is gone."""
        ...


def stat_key(name: str, size: int, mtime_ns: int | str) -> str:
    """What the file looks like from outside: changes when it is touched, rewritten or replaced."""
    return f"{name}:{size}:{mtime_ns}"


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def content_version(name: str, digest: str) -> str:
    return f"{name}{_CONTENT}{digest}"


def digest_of_version(version: str) -> str | None:
    """The digest in a content version; None for a version recorded before content versions (a stat key)."""
    _, found, digest = version.rpartition(_CONTENT)
    return digest if found else None


@dataclass(frozen=True)
class LandingFileVersion:
    path: Path | RemoteLandingFile
    stat_key: str
    digest: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def version(self) -> str:
        return content_version(self.path.name, self.digest)


def versions_of(
    files: Iterable[Path | RemoteLandingFile], known_digests: Mapping[str, str]
) -> tuple[list[LandingFileVersion], dict[str, str]]:
    """Each file's version, hashing only the files whose stat key has no known digest; and the digests
    of the files' current stat keys (to remember for next time). A file gone meanwhile is left out."""
    versions, digests = [], {}
    for path in files:
        try:
            if isinstance(path, Path):
                stat = path.stat()
                key = stat_key(path.name, stat.st_size, stat.st_mtime_ns)
                digest = known_digests.get(key) or file_digest(path)
            else:
                key = path.stat_key
                digest = known_digests.get(key) or path.digest()
        except OSError:  # gone (or a link gone dangling) since the listing: the next look sees it
            continue
        digests[key] = digest
        versions.append(LandingFileVersion(path, key, digest))
    return versions, digests


@dataclass(frozen=True)
class LastIngest:
    """The newest ingest run of a file name: the version it was tagged with (None: unknown) and
    whether it failed (or was canceled)."""

    version: str | None
    stat_key: str | None = None
    failed: bool = False


def already_ingested(file: LandingFileVersion, last: LastIngest | None) -> bool:
    """The file's newest ingest run ingested this very content and did not fail (or is still running).

    Only the newest run counts: content A, then B, then A again is ingested again. A run recorded
    before content versions (its version is a stat key) counts when the file's stat key is unchanged.
    """
    if last is None or last.failed or last.version is None:
        return False
    return last.version in (file.version, file.stat_key)


def known_digests(lasts: Iterable[LastIngest]) -> dict[str, str]:
    """stat key -> digest, from the ingest runs that recorded both: no hashing of an untouched file."""
    known = {}
    for last in lasts:
        digest = digest_of_version(last.version) if last.version else None
        if last.stat_key and digest:
            known[last.stat_key] = digest
    return known
