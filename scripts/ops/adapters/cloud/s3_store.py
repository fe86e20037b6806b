"""ObjectStore over boto3: one code path for Cloudflare R2 and the sandbox's SeaweedFS.

Filed under cloud: it speaks the cloud service's protocol (S3); the sandbox runs a local S3
server so that this same adapter, not a stand-in, is what the sandbox exercises."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ops.environment import ObjectStorage
from ops.errors import ConfigError, ExternalError, NotFoundError, describe


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ObjectStore:
    def __init__(self, storage: ObjectStorage, bucket_role: str) -> None:
        if bucket_role not in storage.buckets:
            raise NotFoundError(f"no {bucket_role!r} bucket in this environment")
        self.bucket = storage.buckets[bucket_role]
        for variable, value in zip(storage.credential_variables, (storage.access_key_id, storage.secret_access_key),
                                   strict=True):
            if value is None:
                raise ConfigError(f"{variable}: required to reach object storage but not set",
                                  hint="only commands that touch storage (backups, locks, journals) need it")
        assert storage.access_key_id is not None and storage.secret_access_key is not None
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=storage.endpoint_url,
            region_name=storage.region,
            aws_access_key_id=storage.access_key_id.get_secret_value(),
            aws_secret_access_key=storage.secret_access_key.get_secret_value(),
            config=Config(signature_version="s3v4", connect_timeout=5, read_timeout=60,
                          retries={"max_attempts": 5, "mode": "standard"},
                          s3={"addressing_style": "path"}),
        )

    @contextmanager
    def _errors(self, what: str, key: str | None = None) -> Iterator[None]:
        """The boundary: every botocore exception leaves as NotFoundError (no bucket) or ExternalError (exit 7)."""
        where = f"{self.bucket}/{key}" if key else self.bucket
        try:
            yield
        except ClientError as exc:
            code = _code(exc)
            if code == "NoSuchBucket":
                raise NotFoundError(f"bucket {self.bucket!r} does not exist",
                                    hint="check the environment's buckets (ops env show)") from None
            request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
            raise ExternalError(f"S3 {what} on {where}: {code or 'error'}"
                                + (f" (request id {request_id})" if request_id else "")) from None
        except BotoCoreError as exc:
            raise ExternalError(f"S3 {what} on {where}: {describe(exc)}",
                                hint="is the object store reachable? (sandbox: ops sandbox status)") from None

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        with self._errors(what, kwargs.get("Key")):
            return fn(Bucket=self.bucket, **kwargs)

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Write an object; with `if_absent`, only if none exists (False when one does)."""
        extra = {"IfNoneMatch": "*"} if if_absent else {}
        with self._errors("put", key):
            try:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
                return True
            except ClientError as exc:
                if if_absent and _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    return False
                raise

    def get_bytes(self, key: str) -> bytes | None:
        with self._errors("get", key):
            try:
                return bytes(self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    return None
                raise

    def delete(self, key: str) -> None:
        self._call("delete", self._client.delete_object, Key=key)

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call("list", self._client.list_objects_v2, Prefix=prefix, **token)
            keys += [item["Key"] for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return keys
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def size(self, key: str) -> int | None:
        with self._errors("head", key):
            try:
                return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise

    def start_multipart(self, key: str) -> str:
        return str(self._call("multipart start", self._client.create_multipart_upload, Key=key)["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        result = self._call("upload part", self._client.upload_part, Key=key, UploadId=upload_id,
                            PartNumber=number, Body=data)
        return str(result["ETag"])

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None:
        parts = [{"ETag": etag, "PartNumber": i + 1} for i, etag in enumerate(etags)]
        self._call("multipart complete", self._client.complete_multipart_upload, Key=key, UploadId=upload_id,
                   MultipartUpload={"Parts": parts})

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with self._errors("multipart abort", key):
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if _code(exc) not in ("NoSuchUpload", "404"):
                    raise

    def list_multipart(self, prefix: str) -> list[dict[str, Any]]:
        page = self._call("list multipart", self._client.list_multipart_uploads, Prefix=prefix)
        return [{"key": u["Key"], "upload_id": u["UploadId"], "initiated": u.get("Initiated")}
                for u in page.get("Uploads", [])]

    def stream(self, key: str, chunk_size: int = 8 * 1024 * 1024) -> Iterator[bytes]:
        with self._errors("get", key):
            try:
                body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    raise NotFoundError(f"object {key} not found in {self.bucket}") from None
                raise
            # A connection lost mid-download is a dependency failure too, not a bug.
            yield from body.iter_chunks(chunk_size)
