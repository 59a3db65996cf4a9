"""Where outputs live: a local folder or an object-store URI (``s3://``, ``gs://``, ``file://``), with one set of
path operations for both.

A stage's ``output_dir`` is kept as a string and joined with `join` (``Path`` would fold ``s3://`` into ``s3:/``).
Object stores have no folders and no rename: a folder is a key prefix, `make_dirs` does nothing there, and every
object is written whole (``xlray.outputs``). What must stay on a local disk (the log file, a default sqlite MLflow
store, a checkpoint before its upload, a model read from a bucket) goes to `scratch_dir`.

Credentials come from the usual environment (``AWS_ACCESS_KEY_ID``..., ``GOOGLE_APPLICATION_CREDENTIALS``, an
instance role); the S3 endpoint from ``storage.endpoint_url`` or ``AWS_ENDPOINT_URL``. `redact` takes credentials
out of any URI shown or logged.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from xlray.configs import StorageConfig
from xlray.errors import XlrayError, one_line
from xlray.textio import is_uri, open_fs

BUCKET_SCHEMES = ("s3://", "gs://", "gcs://")  # a URI's first part names a bucket (file:// is a plain path)
ENDPOINT = "AWS_ENDPOINT_URL"  # read by pyarrow, polars, boto3 and Ray Tune alike
USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def join(base: str | Path, *names: str) -> str:
    """``base/name/...`` for a local path or a URI (a URI keeps its ``scheme://``)."""
    if not is_uri(base):
        return os.path.join(str(base), *names)
    return "/".join([str(base).rstrip("/"), *(n.strip("/") for n in names)])


def absolute(path: str | Path) -> str:
    """A URI as it is, a local path made absolute: the same location from any working folder."""
    return str(path) if is_uri(path) else str(Path(path).resolve())


def parent(path: str | Path) -> str:
    """The folder holding ``path`` (local or a URI)."""
    if not is_uri(path):
        return str(Path(path).parent)
    return str(path).rstrip("/").rpartition("/")[0]


def name(path: str | Path) -> str:
    """The last part of ``path`` (local or a URI)."""
    return str(path).rstrip("/").rpartition("/")[2]


def make_dirs(folder: str | Path) -> None:
    """Create a local folder and its parents; a URI needs none (an object store has only keys)."""
    if not is_uri(folder):
        Path(folder).mkdir(parents=True, exist_ok=True)


def entries(folder: str | Path, recursive: bool = False) -> list:
    """pyarrow's FileInfo of what is in ``folder`` (local or a URI; with ``recursive``, at every depth); a missing
    folder has nothing."""
    from pyarrow import fs as pafs

    filesystem, inner = open_fs(str(folder))
    try:
        return filesystem.get_file_info(pafs.FileSelector(inner, recursive=recursive, allow_not_found=True))
    except FileNotFoundError:
        return []


def list_names(folder: str | Path, suffix: str = "") -> list[str]:
    """The names of the finished files directly in ``folder`` ending with ``suffix``, sorted; temporaries
    (dot-files) are left out, and a missing folder has none."""
    names = (info.base_name for info in entries(folder) if info.type.name == "File")
    return sorted(n for n in names if n.endswith(suffix) and not n.startswith("."))


def list_folders(folder: str | Path, prefix: str = "") -> list[str]:
    """The names of the folders directly in ``folder`` starting with ``prefix``, sorted (for a URI: the key
    prefixes one level down); a missing folder has none."""
    return sorted(i.base_name for i in entries(folder) if i.type.name == "Directory" and i.base_name.startswith(prefix))


def exists(path: str | Path) -> bool:
    """Whether a file or folder is at ``path`` (for a URI: an object, or a prefix with objects under it)."""
    if not is_uri(path):
        return Path(path).exists()
    from pyarrow import fs as pafs

    filesystem, inner = open_fs(str(path))
    return filesystem.get_file_info(inner).type != pafs.FileType.NotFound


def download(uri: str, into: Path) -> Path:
    """Copy the file or folder at ``uri`` into the local folder ``into``; returns the local copy's path."""
    from pyarrow import fs as pafs

    filesystem, inner = open_fs(uri)
    local = into / name(uri)
    if filesystem.get_file_info(inner).type == pafs.FileType.Directory:
        local.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(inner, str(local), source_filesystem=filesystem, destination_filesystem=pafs.LocalFileSystem())
    return local


def scratch_dir(out: str | Path) -> Path:
    """A local folder for what an output at ``out`` keeps on this machine's disk: ``out`` itself when local, else
    ``$XLRAY_SCRATCH`` (default ``~/.cache/xlray``) ``/<bucket and path>-<hash>``, the same for the same URI."""
    if not is_uri(out):
        return Path(out)
    uri = redact(str(out)).rstrip("/")
    root = Path(os.environ.get("XLRAY_SCRATCH") or Path.home() / ".cache" / "xlray")
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", uri.split("://", 1)[1])[-80:].strip("-")
    return root / f"{readable}-{hashlib.sha256(uri.encode()).hexdigest()[:12]}"


def redact(text: str) -> str:
    """``text`` with the credentials of every URI in it (``s3://KEY:SECRET@bucket``) replaced by ``***``."""
    return USERINFO.sub(r"\g<scheme>***@", text)


def use_storage(cfg: StorageConfig) -> None:
    """Make ``cfg``'s endpoint this process's (and, through `worker_env`, its Ray workers') S3 endpoint."""
    if cfg.endpoint_url:
        os.environ[ENDPOINT] = cfg.endpoint_url


def worker_env() -> dict[str, str]:
    """The storage settings Ray workers need from this process (no credentials: nodes have their own)."""
    return {ENDPOINT: os.environ[ENDPOINT]} if os.environ.get(ENDPOINT) else {}


# Words in pyarrow's and the AWS SDK's errors, and what they mean to a user.
# Words of a refusal; the HTTP status 403 only as a number of its own (a port such as 40375 is not one).
REFUSED = re.compile(r"ACCESS_DENIED|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|credentials|\b403\b")
UNREACHABLE = ("NETWORK_CONNECTION", "Couldn't connect", "curlCode", "timed out", "Could not resolve", "refused")


S3_ERRORS = ("When getting information", "When listing", "When creating", "When reading", "When writing")


def has_s3_credentials() -> bool:
    """Whether the environment offers S3 credentials the way the AWS SDK looks for them (keys, a profile or its
    file, a web identity, a container role, an instance role)."""
    names = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")  # fmt: skip
    if any(os.environ.get(n) for n in names):
        return True
    files = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    return files.is_file() or os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() != "true"


def check_output(uri: str | Path, field: str = "output_dir") -> None:
    """Refuse, before anything is written, an output URI that cannot be used: a scheme pyarrow does not support, a
    bucket that does not exist, credentials the store refuses, an endpoint that does not answer. The one-line error
    names ``field`` and the URI without credentials. A local path is always accepted (its folders are made)."""
    if not is_uri(uri):
        return
    shown = redact(str(uri))
    try:
        filesystem, inner = open_fs(str(uri))
        bucket = inner.strip("/").split("/", 1)[0] if str(uri).startswith(BUCKET_SCHEMES) else ""
        missing = bool(bucket) and filesystem.get_file_info(bucket).type.name == "NotFound"
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError or ValueError, with the SDK's words
        raise XlrayError(f"{field}: cannot write to {shown}: {why_unusable(redact(one_line(exc)))}") from None
    if missing:
        raise XlrayError(f"{field}: cannot write to {shown}: bucket {bucket!r} does not exist")


def why_unusable(error: str) -> str:
    """A pyarrow filesystem error put in a user's words, the error itself kept after them."""
    if "Unrecognized filesystem type" in error or "Unsupported" in error:
        return f"unsupported URI scheme (use a local path, s3:// or gs://): {error}"
    if error.startswith(S3_ERRORS) and not has_s3_credentials():
        keys = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile or a role"
        return f"no S3 credentials in the environment ({keys}): {error}"
    if REFUSED.search(error):
        return f"the store refused the credentials (set them in the environment): {error}"
    if any(word in error for word in UNREACHABLE):
        endpoint = os.environ.get(ENDPOINT, "the default endpoint")
        return f"the endpoint {redact(endpoint)} does not answer: {error}"
    return error
