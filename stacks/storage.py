"""Storage: R2 buckets in the EU jurisdiction (uploads, agents, backups), lifecycles and CORS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_cloudflare as cloudflare

from autoenroll.contract import BUCKET_ROLES, bucket_name
from stacks.config import StackNames, StorageConfig

DAY = 86400
UPLOAD_PREFIXES = ("compliance-evidence/", "reports/", "temp/")
AGENT_PREFIXES = ("macos/", "windows/", "linux/")


@dataclass(frozen=True)
class StorageArgs:
    storage: StorageConfig
    names: StackNames
    account_id: str  # the Cloudflare account (edge.account_id) the buckets live in
    app_origin: str  # the uploads bucket's CORS origin when storage.cors_origins is empty


class Storage(pulumi.ComponentResource):
    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("autoenroll:storage:Storage", name, None, opts)
        s = args.storage
        account = args.account_id
        data_opts = pulumi.ResourceOptions(parent=self, protect=args.names.protect)
        child = pulumi.ResourceOptions(parent=self)

        self.bucket_names = {role: bucket_name(args.names.environment, role) for role in BUCKET_ROLES}
        buckets = {
            role: cloudflare.R2Bucket(f"{name}-{role}", account_id=account, name=bucket, jurisdiction=s.jurisdiction,
                                      location=s.location_hint, opts=data_opts)
            for role, bucket in self.bucket_names.items()
        }
        abort_stale: Any = {"condition": {"type": "Age", "max_age": s.abort_multipart_days * DAY}}
        cloudflare.R2BucketLifecycle(
            f"{name}-uploads-lifecycle", account_id=account, bucket_name=buckets["uploads"].name,
            jurisdiction=s.jurisdiction,
            rules=cast(Any, [
                {"id": "expire-temp", "enabled": True, "conditions": {"prefix": "temp/"},
                 "delete_objects_transition": {"condition": {"type": "Age", "max_age": s.temp_expiry_days * DAY}}},
                {"id": "abort-stale-multipart", "enabled": True, "conditions": {"prefix": ""},
                 "abort_multipart_uploads_transition": abort_stale},
            ]),
            opts=child)
        cloudflare.R2BucketLifecycle(
            f"{name}-backups-lifecycle", account_id=account, bucket_name=buckets["backups"].name,
            jurisdiction=s.jurisdiction,
            rules=cast(Any, [
                # A safety net behind `ops backup prune` (30 dailies + 12 monthlies): nothing
                # outlives the longest retention, and abandoned multipart uploads go away.
                {"id": "expire-after-retention", "enabled": True, "conditions": {"prefix": ""},
                 "delete_objects_transition": {"condition": {"type": "Age",
                                                             "max_age": s.backup_retention_days * DAY}}},
                {"id": "abort-stale-multipart", "enabled": True, "conditions": {"prefix": ""},
                 "abort_multipart_uploads_transition": abort_stale},
            ]),
            opts=child)
        origins = list(s.cors_origins) or [args.app_origin]
        cloudflare.R2BucketCors(
            f"{name}-uploads-cors", account_id=account, bucket_name=buckets["uploads"].name,
            jurisdiction=s.jurisdiction,
            rules=[{"allowed": {"methods": ["GET", "PUT", "HEAD"], "origins": origins,
                                "headers": ["content-type", "content-md5"]},
                    "expose_headers": ["etag"], "max_age_seconds": 3600}],
            opts=child)
        self.endpoint = f"https://{account}.{s.jurisdiction}.r2.cloudflarestorage.com" \
            if s.jurisdiction != "default" else f"https://{account}.r2.cloudflarestorage.com"
        self.register_outputs({"buckets": self.bucket_names, "endpoint": self.endpoint})
