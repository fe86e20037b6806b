"""Offline stand-ins for app/Dockerfile's base images, and the app image built from that file.

Image registries are out of reach from test machines, so each `FROM` image is made here and
`docker import`ed under the exact reference the Dockerfile names; the build then resolves it
locally. Stand-ins are built once into `CACHE` (outside the repository) and rebuilt when missing:
- `ghcr.io/astral-sh/uv:X` holds `/uv` and `/uvx` from PyPI's `uv==X` wheel (what the real image holds);
- `python:3.11.*-slim-bookworm` is a minbase Debian bookworm (mmdebstrap) with python3.11, a
  `python` on PATH, this machine's CA certificates (an egress proxy may sign PyPI's TLS), and no
  EXTERNALLY-MANAGED marker (the real image's Python is not Debian's either);
- a busybox-static image for plumbing containers (a couple of MB).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ops.paths import REPO_ROOT
from ops.sandbox.engine import EngineClient, EngineError

CACHE = Path(os.environ.get("AUTOENROLL_LAB_CACHE", "/var/cache/autoenroll-lab"))
DOCKERFILE = REPO_ROOT / "app" / "Dockerfile"
BUSYBOX_IMAGE = "autoenroll-lab/busybox:static"
APP_REPOSITORY = "autoenroll/app"
EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")


def from_images(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The external images a Dockerfile's FROM lines name (not its own stages), in order, once each."""
    stages: set[str] = set()
    images: list[str] = []
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if not match:
            continue
        image, stage = match.group(1), match.group(2)
        if image not in stages and image not in images:
            images.append(image)
        if stage:
            stages.add(stage)
    return images


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    """One builder of stand-ins at a time across test sessions (they share CACHE)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(argv: list[str], timeout: float = 600.0) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise EngineError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def _cached(name: str, build: Callable[[Path], None]) -> Path:
    """CACHE/name, built by `build(tmp_path)` if missing (atomically: a killed build leaves no half file)."""
    target = CACHE / name
    with _cache_lock():
        if not target.exists():
            with tempfile.TemporaryDirectory(dir=CACHE, prefix=".build-") as tmp:
                partial = Path(tmp) / name
                build(partial)
                partial.rename(target)
    return target


# --------------------------------------------------------------------------- the stand-ins


def _uv_client() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin"))
    if not found:
        raise EngineError("the uv stand-in needs uv on PATH (bin/setup installs it)")
    return found


def _build_uv_tar(version: str) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        target = out.parent / "uv-wheel"
        _run([_uv_client(), "pip", "install", "--quiet", "--no-deps", "--target", str(target),
              "--python", sys.executable, f"uv=={version}"])
        with tarfile.open(out, "w") as tar:
            for binary in ("uv", "uvx"):
                tar.add(target / "bin" / binary, arcname=binary)
    return build


def _build_python_tar(python: str) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        certs = sorted(str(p) for p in EXTRA_CA_DIR.glob("*.crt"))
        hooks = []
        if certs:
            hooks += [f"--customize-hook=copy-in {' '.join(certs)} /usr/local/share/ca-certificates/",
                      '--customize-hook=chroot "$1" update-ca-certificates']
        _run(["mmdebstrap", "--quiet", "--variant=minbase",
              f"--include=python{python},python-is-python3,ca-certificates,passwd",
              *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale", "info")),
              *hooks,
              '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
              "bookworm", str(out)])
    return build


def _build_busybox_tar(out: Path) -> None:
    with tarfile.open(out, "w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
        for applet in ("sh", "wget", "sleep", "cat"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)


@dataclass(frozen=True)
class StandIn:
    reference: str
    tar_name: str
    build: Callable[[Path], None]
    changes: tuple[str, ...] = ()


def stand_in(reference: str) -> StandIn:
    """How to make the image `reference` offline; an error names a FROM image nothing here can make."""
    uv = re.fullmatch(r"ghcr\.io/astral-sh/uv:(\d+\.\d+\.\d+)", reference)
    if uv:
        return StandIn(reference, f"uv-{uv.group(1)}.tar", _build_uv_tar(uv.group(1)))
    python = re.fullmatch(r"python:(3\.\d+)\.\d+-slim-bookworm", reference)
    if python:
        return StandIn(reference, f"python-{python.group(1)}-bookworm.tar", _build_python_tar(python.group(1)),
                       changes=("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "ENV LANG=C.UTF-8",
                                # uv trusts only its bundled roots unless told; a proxy's CA lives here.
                                "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                                'CMD ["python3"]'))
    if reference == BUSYBOX_IMAGE:
        return StandIn(reference, "busybox-static.tar", _build_busybox_tar, changes=('CMD ["sh"]',))
    raise EngineError(f"no offline stand-in for base image {reference!r}: add one in scripts/ops/sandbox/images.py")


def ensure_image(engine: EngineClient, reference: str) -> None:
    """Import the stand-in for `reference` into `engine` (building its tar into CACHE if missing)."""
    if engine.has_image(reference):
        return
    spec = stand_in(reference)
    tar = _cached(spec.tar_name, spec.build)
    engine.docker("import", *(f"--change={c}" for c in spec.changes), str(tar), reference, timeout=300)


def ensure_base_images(engine: EngineClient, dockerfile: Path = DOCKERFILE) -> list[str]:
    images = from_images(dockerfile)
    for reference in images:
        ensure_image(engine, reference)
    return images


# --------------------------------------------------------------------------- the app image


def context_digest(paths: tuple[str, ...] = ("app/Dockerfile", "pyproject.toml", "app/pyproject.toml", "uv.lock")
                   ) -> str:
    digest = hashlib.sha256()
    for rel in paths:
        digest.update((REPO_ROOT / rel).read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class BuiltImage:
    reference: str  # repository:tag in the building engine
    image_id: str
    size_bytes: int
    user: str


def build_app_image(engine: EngineClient, tag: str = "test", reference: str | None = None) -> BuiltImage:
    """`docker build` of app/Dockerfile with the repository as context, exactly as CI builds it."""
    ensure_base_images(engine)
    reference = reference or f"{APP_REPOSITORY}:{tag}"
    # The builder's RUN steps use the host network: this engine has no bridge (see ops/sandbox/engine.py).
    engine.docker("build", "--network=host", "--file", str(DOCKERFILE), "--tag", reference, str(REPO_ROOT),
                  env={"DOCKER_BUILDKIT": "1"}, timeout=900)
    info = engine.inspect("image", reference)
    config = info.get("Config")
    user = str(config.get("User", "")) if isinstance(config, dict) else ""
    size = info.get("Size")
    return BuiltImage(reference, str(info.get("Id", "")), int(size) if isinstance(size, int) else 0, user)


def missing_lab_tools() -> list[str]:
    """The tools the lab needs that this machine lacks (bin/setup installs them)."""
    tools = {"dockerd": "/usr/sbin/dockerd", "docker": "/usr/bin/docker", "mmdebstrap": "/usr/bin/mmdebstrap",
             "docker-registry": "/usr/bin/docker-registry", "busybox": "/bin/busybox", "nsenter": "/usr/bin/nsenter"}
    return [name for name, path in tools.items() if not shutil.which(path)]
