"""Read, write, list and copy files that live either on local disk or in S3 (`s3://bucket/key`).

This is the only module that knows the difference: every other step passes URIs through these
functions. The S3 endpoint comes from `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (MinIO, moto, Ceph).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ufvideo.errors import UFVideoError
from ufvideo.files import atomic_write, sha256_file, temp_file

PathLike = str | os.PathLike[str]
_CHUNK = 1 << 20
# Above the threshold, transfers split into parts that move in parallel and retry independently.
DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024
DEFAULT_MULTIPART_CHUNKSIZE = 16 * 1024 * 1024
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_DENIED_CODES = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}


class StorageError(UFVideoError, OSError):
    """An S3 failure that is neither a missing object nor a permission problem."""


def is_s3(uri: PathLike) -> bool:
    return isinstance(uri, str) and uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> (`bucket`, `a/b`); the key is empty for a bare bucket."""
    if not is_s3(uri):
        raise ValueError(f"{uri!r}: not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r}: no bucket name")
    return bucket, key


def join(base: PathLike, *parts: str) -> str:
    """Join path parts the way the base's backend expects (always `/` for S3)."""
    if is_s3(base):
        return posixpath.join(str(base), *parts)
    return os.path.join(base, *parts)


# --------------------------------------------------------------------------- S3 client


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def client() -> Any:
    """A boto3 S3 client built from the environment (credentials from the standard chain)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    # Keyed on the env that shapes the client, so tests and jobs that change it get a fresh one.
    key = (_endpoint(), region, os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_PROFILE"))
    return _client(*key)


@functools.lru_cache(maxsize=8)
def _client(endpoint: str | None, region: str, _key_id: str | None, _profile: str | None) -> Any:
    import boto3
    from botocore.config import Config

    # Path-style addressing: S3-compatible servers behind one host name rarely serve bucket subdomains.
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"})
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region, config=config)


def transfer_config(threshold: int | None = None, chunksize: int | None = None) -> Any:
    """Multipart settings; env `UFVIDEO_S3_MULTIPART_THRESHOLD` / `_CHUNKSIZE` (bytes) override the defaults."""
    from boto3.s3.transfer import TransferConfig

    threshold = threshold or int(os.environ.get("UFVIDEO_S3_MULTIPART_THRESHOLD", DEFAULT_MULTIPART_THRESHOLD))
    chunksize = chunksize or int(os.environ.get("UFVIDEO_S3_MULTIPART_CHUNKSIZE", DEFAULT_MULTIPART_CHUNKSIZE))
    return TransferConfig(multipart_threshold=threshold, multipart_chunksize=chunksize, max_concurrency=8)


@contextlib.contextmanager
def _s3_errors(uri: str) -> Iterator[None]:
    """Turn botocore's errors into OSErrors that name the URI, so a failed step says what it touched."""
    from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            raise FileNotFoundError(f"{uri}: bucket {split_s3(uri)[0]!r} does not exist") from err
        if code in _MISSING_CODES:
            raise FileNotFoundError(f"{uri}: no such object") from err
        if code in _DENIED_CODES:
            raise PermissionError(f"{uri}: access denied ({code})") from err
        raise StorageError(f"{uri}: S3 error {code}: {err}") from err
    except (S3UploadFailedError, S3TransferFailedError) as err:
        if "NoSuchBucket" in str(err):
            raise FileNotFoundError(f"{uri}: bucket {split_s3(uri)[0]!r} does not exist") from err
        if any(code in str(err) for code in _DENIED_CODES):
            raise PermissionError(f"{uri}: access denied ({err})") from err
        raise StorageError(f"{uri}: transfer failed: {err}") from err
    except NoCredentialsError as err:
        raise PermissionError(f"{uri}: no AWS credentials found (set AWS_ACCESS_KEY_ID or a profile)") from err
    except BotoCoreError as err:
        raise StorageError(f"{uri}: {err} (endpoint {_endpoint() or 'AWS default'})") from err


# --------------------------------------------------------------------------- whole-object reads and writes


def read_bytes(uri: PathLike) -> bytes:
    if not is_s3(uri):
        return Path(uri).read_bytes()
    bucket, key = split_s3(str(uri))
    with _s3_errors(str(uri)):
        return client().get_object(Bucket=bucket, Key=key)["Body"].read()


def read_text(uri: PathLike, encoding: str = "utf-8") -> str:
    return read_bytes(uri).decode(encoding)


def write_bytes(uri: PathLike, data: bytes) -> None:
    """Write a whole object; a local target is replaced atomically, an S3 object appears whole or not at all."""
    if not is_s3(uri):
        with atomic_write(uri, "wb") as handle:
            handle.write(data)
        return
    bucket, key = split_s3(str(uri))
    with _s3_errors(str(uri)):
        client().upload_fileobj(io.BytesIO(data), bucket, key, Config=transfer_config())


def write_text(uri: PathLike, text: str, encoding: str = "utf-8") -> None:
    write_bytes(uri, text.encode(encoding))


def exists(uri: PathLike) -> bool:
    """True for an existing file or directory; an S3 prefix with objects under it counts as a directory."""
    if not is_s3(uri):
        return os.path.exists(uri)
    bucket, key = split_s3(str(uri))
    s3 = client()
    if key and not key.endswith("/"):
        with contextlib.suppress(FileNotFoundError), _s3_errors(str(uri)):
            s3.head_object(Bucket=bucket, Key=key)
            return True
    prefix = key.rstrip("/") + "/" if key else ""
    with _s3_errors(str(uri)):
        try:
            return s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0) > 0
        except s3.exceptions.NoSuchBucket:
            return False


def listdir(uri: PathLike, recursive: bool = False) -> list[str]:
    """Sorted full URIs under a directory: its children, or with `recursive` every file below it.

    An S3 "directory" is a key prefix, so one with no objects under it does not exist and raises,
    just like a missing local directory.
    """
    if not is_s3(uri):
        root = Path(uri)
        if not root.is_dir():
            raise FileNotFoundError(f"{uri}: no such directory")
        if not recursive:
            return sorted(str(child) for child in root.iterdir())
        return sorted(str(p) for p in root.rglob("*") if p.is_file())
    bucket, key = split_s3(str(uri))
    prefix = key.rstrip("/") + "/" if key else ""
    found: list[str] = []
    paginator = client().get_paginator("list_objects_v2")
    kwargs = {"Bucket": bucket, "Prefix": prefix} | ({} if recursive else {"Delimiter": "/"})
    with _s3_errors(str(uri)):
        for page in paginator.paginate(**kwargs):
            # Keys ending in "/" are directory markers written by consoles and some tools, not files.
            found += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", []) if not o["Key"].endswith("/")]
            found += [f"s3://{bucket}/{cp['Prefix'].rstrip('/')}" for cp in page.get("CommonPrefixes", [])]
    if not found:
        raise FileNotFoundError(f"{uri}: no such directory (no objects under prefix {prefix!r})")
    return sorted(found)


def sizes(uri: PathLike) -> dict[str, int]:
    """`{relative posix path: size in bytes}` of every file below a directory (S3: from one object listing)."""
    base = str(uri).rstrip("/")
    if not is_s3(uri):
        return {Path(os.path.relpath(f, base)).as_posix(): os.path.getsize(f) for f in listdir(uri, recursive=True)}
    bucket, key = split_s3(base)
    prefix = key + "/" if key else ""
    found: dict[str, int] = {}
    with _s3_errors(base):
        for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update({o["Key"][len(prefix) :]: int(o["Size"]) for o in page.get("Contents", [])})
    return {relative: size for relative, size in found.items() if relative and not relative.endswith("/")}


def remove(uri: PathLike) -> None:
    """Delete one file or object; a missing one is not an error."""
    if not is_s3(uri):
        Path(uri).unlink(missing_ok=True)
        return
    bucket, key = split_s3(str(uri))
    with _s3_errors(str(uri)):
        client().delete_object(Bucket=bucket, Key=key)


def check_writable(uri: PathLike) -> None:
    """Fail now, with the URI named, if a later write under `uri` would fail (missing bucket, no permission).

    Writes and deletes one small probe object: the only check S3 offers that also covers bucket policies.
    """
    probe_name = f".ufvideo-write-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if not is_s3(uri):
        try:
            Path(uri).mkdir(parents=True, exist_ok=True)
            probe = Path(uri) / probe_name
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise StorageError(f"{uri}: not writable: {err.strerror or err}") from err
        return
    bucket, _ = split_s3(str(uri))
    with _s3_errors(str(uri)):
        try:
            client().head_bucket(Bucket=bucket)
        except Exception as err:  # head_bucket answers a bare 404 with no NoSuchBucket code
            code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise FileNotFoundError(f"{uri}: bucket {bucket!r} does not exist") from err
            raise
    probe = join(str(uri), probe_name)
    write_bytes(probe, b"")
    remove(probe)


def sha256(uri: PathLike) -> str:
    """Hex digest of the content, streamed so multi-GB checkpoints never sit in memory."""
    if not is_s3(uri):
        return sha256_file(uri)
    bucket, key = split_s3(str(uri))
    digest = hashlib.sha256()
    with _s3_errors(str(uri)):
        body = client().get_object(Bucket=bucket, Key=key)["Body"]
        for block in iter(lambda: body.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- transfers


def upload_file(local: PathLike, uri: str, threshold: int | None = None, chunksize: int | None = None) -> None:
    """Upload a local file; above the multipart threshold it goes up in parallel parts."""
    if not os.path.isfile(local):
        raise FileNotFoundError(f"{local}: no such file to upload to {uri}")
    bucket, key = split_s3(uri)
    with _s3_errors(uri):
        client().upload_file(os.fspath(local), bucket, key, Config=transfer_config(threshold, chunksize))


def download_file(uri: str, local: PathLike, threshold: int | None = None, chunksize: int | None = None) -> None:
    """Download to a temp file beside `local`, then rename: readers never see a partial file."""
    bucket, key = split_s3(uri)
    target = Path(local)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(target)
    os.close(fd)
    try:
        with _s3_errors(uri):
            client().download_file(bucket, key, tmp, Config=transfer_config(threshold, chunksize))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def copy(src: PathLike, dst: PathLike, threshold: int | None = None, chunksize: int | None = None) -> None:
    """Copy one file between any pair of local paths and S3 URIs; S3 to S3 copies server-side."""
    if is_s3(src) and is_s3(dst):
        sbucket, skey = split_s3(str(src))
        dbucket, dkey = split_s3(str(dst))
        with _s3_errors(str(src)):
            client().head_object(Bucket=sbucket, Key=skey)  # a missing source names src, not dst
        with _s3_errors(str(dst)):
            source = {"Bucket": sbucket, "Key": skey}
            client().copy(source, dbucket, dkey, Config=transfer_config(threshold, chunksize))
    elif is_s3(dst):
        upload_file(src, str(dst), threshold, chunksize)
    elif is_s3(src):
        download_file(str(src), dst, threshold, chunksize)
    else:
        with open(src, "rb") as reader, atomic_write(dst, "wb") as writer:
            shutil.copyfileobj(reader, writer, _CHUNK)


def copy_tree(src_dir: PathLike, dst_dir: PathLike, workers: int = 4) -> list[str]:
    """Copy every file below `src_dir` to the same relative path below `dst_dir` (e.g. a checkpoint).

    Returns the destination URIs, sorted. Files move in parallel because checkpoints mix a few
    large shards with many small tokenizer/config files.
    """
    sources = listdir(src_dir, recursive=True)
    base = str(src_dir).rstrip("/") + ("/" if is_s3(src_dir) else os.sep)
    pairs = []
    for source in sources:
        relative = source[len(base) :] if source.startswith(base) else os.path.relpath(source, src_dir)
        pairs.append((source, join(dst_dir, *relative.replace(os.sep, "/").split("/"))))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(lambda pair: copy(*pair), pairs))
    return sorted(dst for _, dst in pairs)
