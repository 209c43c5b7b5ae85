"""Where the landing files, the published snapshots and the reports live (no Dagster import).

`local` profile (`LocalFiles`): ECOM_HOME's `landing/`, `published/` and `reports/` folders, as ever.
`cluster` profile (`S3Files`): `landing/`, `published/` and `reports/` under ECOM_FILES_URL
(s3://bucket/prefix), so that a worker needs nothing on its own disk but scratch: it lists the
landing prefix, ingests a landing file from a local copy in `ECOM_HOME/scratch` (removed afterwards:
`lakehouse/landing.py`'s careful reader runs unchanged on it), and writes snapshots and reports into
a scratch folder whose files are uploaded when the block ends. An S3 PUT replaces an object whole,
so readers see the old snapshot or the new one, as the local profile's renames ensure.

`file_store(paths)` gives the active profile's store. Both have the same methods:
- `list_landing()`: the landing files (local Paths, or `S3LandingFile`s with a stat key and a digest,
  which `lakehouse/file_versions.py` versions as it does paths);
- `landing_copy(name)`: a local path to read the file from, absent when the file is gone;
- `missing_landing(names)`: which of these files are gone from landing;
- `output(kind)`: a local folder to write `published/` or `reports/` files into, stored on exit;
- `url(kind, name)`, `read(kind, name)`, `names(kind)`: where a file is, its bytes, what is there;
- `exists(kind, name)`: whether the file is there (without reading it);
- `mirror(kind)`: a local folder with the kind's files, for the app (a scratch copy, in the bucket's case).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.lakehouse.file_versions import HASH_BLOCK_BYTES, stat_key
from ecom_assets.lakehouse.landing import has_landing_suffix, list_landing_files
from ecom_assets.profile import ClusterConfig, cluster_config

LANDING, PUBLISHED, REPORTS = "landing", "published", "reports"


def file_store(paths: EcomPaths) -> LocalFiles | S3Files:
    """The active profile's store (ecom_assets/profile.py)."""
    cluster = cluster_config()
    return LocalFiles(paths) if cluster is None else S3Files(cluster, paths)


def _visible(relative: Path) -> bool:
    # Hidden names are writers' temp files (publishing.replaced_atomically).
    return not any(part.startswith(".") for part in relative.parts)


@dataclass(frozen=True)
class LocalFiles:
    """ECOM_HOME's folders: what the local profile always did, nothing copied."""

    paths: EcomPaths

    def folder(self, kind: str) -> Path:
        return {LANDING: self.paths.landing, PUBLISHED: self.paths.published, REPORTS: self.paths.reports}[kind]

    @property
    def landing_location(self) -> str:
        return str(self.paths.landing)

    def list_landing(self) -> list[Path]:
        return list_landing_files(self.paths.landing)

    @contextmanager
    def landing_copy(self, name: str) -> Iterator[Path]:
        yield self.paths.landing / name

    def missing_landing(self, names: Iterable[str]) -> set[str]:
        return {name for name in names if not os.path.lexists(self.paths.landing / name)}

    @contextmanager
    def output(self, kind: str) -> Iterator[Path]:
        folder = self.folder(kind)
        folder.mkdir(parents=True, exist_ok=True)
        yield folder

    def url(self, kind: str, name: str | Path) -> str:
        return str(self.folder(kind) / name)

    def read(self, kind: str, name: str) -> bytes | None:
        try:
            return (self.folder(kind) / name).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, kind: str, name: str) -> bool:
        return (self.folder(kind) / name).is_file()

    def mirror(self, kind: str) -> Path:
        """A local folder holding the kind's files, for readers of folders (the app): the folder itself."""
        return self.folder(kind)

    def names(self, kind: str) -> list[str]:
        """The visible files directly in the folder."""
        folder = self.folder(kind)
        return sorted(p.name for p in folder.glob("*") if p.is_file() and not p.name.startswith("."))


@dataclass(frozen=True)
class S3LandingFile:
    """A landing object as listed: its stat key is its name, size and ETag."""

    store: S3Files = field(repr=False, compare=False)
    name: str
    size: int
    etag: str

    @property
    def stat_key(self) -> str:
        return stat_key(self.name, self.size, self.etag)

    def digest(self) -> str:
        """sha256 of the object's bytes, streamed (nothing written to disk)."""
        digest = hashlib.sha256()
        body = self.store.get(LANDING, self.name)
        if body is None:
            raise FileNotFoundError(self.store.url(LANDING, self.name))
        with body:
            while block := body.read(HASH_BLOCK_BYTES):
                digest.update(block)
        return digest.hexdigest()

    def __str__(self) -> str:
        return self.store.url(LANDING, self.name)


class S3Files:
    """`landing/`, `published/` and `reports/` under ECOM_FILES_URL, through boto3; the endpoint and
    keys are the lake's (ECOM_S3_ENDPOINT_URL, AWS_*). Local copies go to ECOM_HOME/scratch."""

    def __init__(self, cluster: ClusterConfig, paths: EcomPaths):
        import boto3

        url = urlparse(cluster.files_url)
        self.bucket, self.prefix = url.netloc, url.path.strip("/")
        self.scratch = paths.scratch
        self.client = boto3.client(
            "s3",
            endpoint_url=cluster.s3_endpoint_url or None,
            aws_access_key_id=cluster.aws_access_key_id,
            aws_secret_access_key=cluster.aws_secret_access_key,
            region_name=cluster.aws_region,
        )

    def key(self, kind: str, name: str | Path = "") -> str:
        return "/".join(part for part in (self.prefix, kind, str(name)) if part)

    def url(self, kind: str, name: str | Path = "") -> str:
        return f"s3://{self.bucket}/{self.key(kind, name)}"

    @property
    def landing_location(self) -> str:
        return self.url(LANDING) + "/"

    def _objects(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(name, listing entry) of each object directly under the kind's prefix."""
        prefix = self.key(kind) + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
        for page in pages:
            for entry in page.get("Contents", []):
                name = entry["Key"][len(prefix) :]
                if name:
                    yield name, entry

    def list_landing(self) -> list[S3LandingFile]:
        return sorted(
            (
                S3LandingFile(self, name, entry["Size"], entry["ETag"].strip('"'))
                for name, entry in self._objects(LANDING)
                if not name.startswith(".") and has_landing_suffix(name)
            ),
            key=lambda file: file.name,
        )

    def get(self, kind: str, name: str) -> Any:
        """The object's streaming body; None when there is no such object."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(kind, name))["Body"]
        except self.client.exceptions.NoSuchKey:
            return None

    @contextmanager
    def _scratch_folder(self, kind: str) -> Iterator[Path]:
        self.scratch.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=self.scratch))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def landing_copy(self, name: str) -> Iterator[Path]:
        """The object downloaded to a scratch file of the same name, removed when the block ends; a
        path that does not exist when the object is gone (the reader then reports it missing)."""
        with self._scratch_folder(LANDING) as folder:
            path = folder / name
            body = self.get(LANDING, name)
            if body is not None:
                with body, open(path, "wb") as out:
                    shutil.copyfileobj(body, out, HASH_BLOCK_BYTES)
            yield path

    def missing_landing(self, names: Iterable[str]) -> set[str]:
        present = {name for name, _ in self._objects(LANDING)}
        return {name for name in names if name not in present}

    @contextmanager
    def output(self, kind: str) -> Iterator[Path]:
        """A scratch folder to write into; its visible files are uploaded under the kind's prefix
        (subfolders kept) when the block succeeds, then the folder is removed."""
        with self._scratch_folder(kind) as folder:
            yield folder
            for path in sorted(folder.rglob("*")):
                relative = path.relative_to(folder)
                if path.is_file() and _visible(relative):
                    self.client.upload_file(str(path), self.bucket, self.key(kind, relative.as_posix()))

    def read(self, kind: str, name: str) -> bytes | None:
        body = self.get(kind, name)
        if body is None:
            return None
        with body:
            return body.read()

    def names(self, kind: str) -> list[str]:
        return sorted(name for name, _ in self._objects(kind) if not name.startswith("."))

    def exists(self, kind: str, name: str) -> bool:
        """A HEAD request: nothing downloaded."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(kind, name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def mirror(self, kind: str) -> Path:
        """A scratch folder holding a copy of the files directly under the kind's prefix, each with its
        object's time as mtime: only new or changed objects are downloaded (each swapped in whole), and
        files whose object is gone are removed. For readers of folders (the app)."""
        folder = self.scratch / f"{kind}_mirror"
        folder.mkdir(parents=True, exist_ok=True)
        listed = set()
        for name, entry in self._objects(kind):
            if name.startswith("."):
                continue
            listed.add(name)
            path, mtime = folder / name, entry["LastModified"].timestamp()
            if path.exists() and (path.stat().st_mtime, path.stat().st_size) == (mtime, entry["Size"]):
                continue
            # A temp name of its own: two app sessions may refresh the mirror at once.
            tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
            try:
                self.client.download_file(self.bucket, self.key(kind, name), str(tmp))
                os.utime(tmp, (mtime, mtime))
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        for path in folder.iterdir():
            if path.is_file() and not path.name.startswith(".") and path.name not in listed:
                path.unlink(missing_ok=True)
        return folder
