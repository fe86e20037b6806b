"""SeaweedFS: the sandbox's S3-compatible object store (R2 in the cloud) and its buckets."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ops.paths import venv_binary
from ops.processes import ProcRef, start_process
from ops.sandbox.components.base import Component, Progress
from ops.sandbox.state import SandboxState
from ops.tcp_ports import free_port

S3_PORT_NAMES = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")


def write_s3_identities(state: SandboxState, root: Path) -> Path:
    s3_dir = root / "s3"
    (s3_dir / "data").mkdir(parents=True, exist_ok=True)
    config = {
        "identities": [{
            "name": "sandbox",
            "credentials": [{"accessKey": state.s3.access_key, "secretKey": state.s3.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]
    }
    path = s3_dir / "identities.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh)
    return path


def weed_argv(state: SandboxState, root: Path, identities: Path) -> list[str]:
    p = state.s3.ports
    return [
        venv_binary("weed"), "server", f"-dir={root / 's3' / 'data'}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
        "-master.volumeSizeLimitMB=1024", "-volume.max=0",
        "-volume.preStopSeconds=0",  # its default 10 s pause is for clusters, not a sandbox
        f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
        "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
        "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.config={identities}",
        # Side services we don't use would otherwise grab fixed default ports.
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]


def s3_client(state: SandboxState):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=state.s3.endpoint_url,
        aws_access_key_id=state.s3.access_key,
        aws_secret_access_key=state.s3.secret_key,
        region_name="us-east-1",
        config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2},
                      s3={"addressing_style": "path"}),
    )


def ensure_buckets(state: SandboxState) -> None:
    client = s3_client(state)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for name in state.s3.buckets.values():
        if name not in existing:
            client.create_bucket(Bucket=name)


def probe_s3(state: SandboxState) -> str:
    client = s3_client(state)
    names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    missing = sorted(set(state.s3.buckets.values()) - names)
    if missing:
        raise RuntimeError(f"buckets missing: {', '.join(missing)}")
    return f"{len(names)} buckets"



class S3(Component):
    name = "s3"
    # SeaweedFS's filer waits 15 s for idle gRPC streams to close; its stores are
    # append-only logs that survive a kill, so don't make every `down` wait for that.
    stop_timeout = 5.0

    def endpoint(self, state: SandboxState) -> str:
        return state.s3.endpoint_url

    def get_proc(self, state: SandboxState) -> ProcRef | None:
        return state.s3.proc

    def set_proc(self, state: SandboxState, proc: ProcRef | None) -> None:
        state.s3.proc = proc

    def ports(self, state: SandboxState) -> list[int]:
        return list(state.s3.ports.values())

    def reallocate_ports(self, state: SandboxState) -> None:
        state.s3.ports = {name: free_port() for name in S3_PORT_NAMES}

    def start(self, state: SandboxState, root: Path) -> ProcRef:
        identities = write_s3_identities(state, root)
        return start_process(weed_argv(state, root, identities), log_file=root / "logs" / "s3.log", cwd=root / "s3")

    def probe(self, state: SandboxState) -> str:
        return probe_s3(state)

    def accepting(self, state: SandboxState) -> object:
        return s3_client(state).list_buckets()  # the buckets come after (`after_start`)

    def after_start(self, state: SandboxState, progress: Progress) -> None:
        ensure_buckets(state)
