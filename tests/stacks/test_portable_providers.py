"""`pulumi refresh`/`destroy` from a fresh checkout elsewhere: a serialized dynamic provider, as
Pulumi stores it in state, unpickles and runs in a process that has only the Pulumi program's own
environment (site-packages without this repository's editable path), in a folder away from it."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider

from stacks.providers.betterstack import BetterStackProvider
from stacks.providers.neon import NeonBranchProvider, NeonDatabaseProvider, NeonProjectProvider
from stacks.providers.stripe import StripeWebhookProvider

pytestmark = pytest.mark.stacks


class ByReference(ResourceProvider):
    """What every provider here was before: a class in an importable module, so dill saves its name."""

# Run with -I -S: no user site, no PYTHONPATH, no .pth files (the editable install's path to this
# checkout is one), no current directory. Only the venv's site-packages is added back.
CHILD = r"""
import base64, json, sys
sys.path.append(SITE)
try:
    import ops  # noqa: F401
    import stacks  # noqa: F401
    import clients  # noqa: F401
    raise SystemExit("this repository is importable: the test proves nothing")
except ImportError:
    pass
import dill
results = {}
for name, serialized in json.load(open(sys.argv[1])).items():
    provider = dill.loads(base64.b64decode(serialized))  # as pulumi's dynamic provider host does
    outcome = {"class": type(provider).__name__}
    try:
        provider.create(PROPS[name])
    except Exception as exc:  # the bundled client's own error: its code came along
        outcome["error"] = type(exc).__name__ + ": " + str(exc)
    results[name] = outcome
print(json.dumps(results))
"""

PROPS = {
    "NeonProjectProvider": {"name": "a", "org_id": "o", "region_id": "aws-eu-central-1", "pg_version": 16,
                            "history_retention_seconds": 21600},
    "NeonBranchProvider": {"project_id": "p", "name": "b", "parent_id": None, "min_cu": 0.25, "max_cu": 1,
                           "suspend_timeout_seconds": 300, "protected": False},
    "NeonDatabaseProvider": {"project_id": "p", "branch_id": "b", "database": "d", "role": "r", "owner_role": "o",
                             "inherited": True},
    "BetterStackProvider": {"kind": "monitors", "attributes": {"check_frequency": 180}},
    "StripeWebhookProvider": {"url": "https://x/y", "enabled_events": ["a"], "description": "d"},
}
CREDENTIALS = {"NeonProjectProvider": "NEON_API_KEY", "NeonBranchProvider": "NEON_API_KEY",
               "NeonDatabaseProvider": "NEON_API_KEY", "BetterStackProvider": "BETTERSTACK_API_TOKEN",
               "StripeWebhookProvider": "STRIPE_API_KEY"}


def test_serialized_providers_run_without_this_repository(tmp_path: Path) -> None:
    providers = [NeonProjectProvider(), NeonBranchProvider(), NeonDatabaseProvider(), BetterStackProvider(),
                 StripeWebhookProvider()]
    state = tmp_path / "providers.json"
    state.write_text(json.dumps({type(p).__name__: serialize_provider(p) for p in providers}))
    site = sysconfig.get_paths()["purelib"]
    script = f"SITE = {site!r}\nPROPS = {PROPS!r}\n" + CHILD
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(state)], capture_output=True, text=True,
                         cwd=elsewhere, env={"PATH": "/usr/bin:/bin"}, check=False, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    for name, variable in CREDENTIALS.items():
        assert results[name]["class"] == name
        # The credential check is in clients.http_api, mapped by stacks.errors: reaching it means the
        # client code and the mapping are there (a stacks error, never an ops one).
        assert results[name]["error"].startswith("StackConfigError: " + variable), results[name]


def test_a_provider_pickled_by_reference_would_not_import(tmp_path: Path) -> None:
    """The check above can fail: a plain provider class from a module of this repository does not load."""
    state = tmp_path / "providers.json"
    state.write_text(json.dumps({"x": serialize_provider(ByReference())}))
    site = sysconfig.get_paths()["purelib"]
    script = (f"SITE = {site!r}\nimport base64, json, sys\nsys.path.append(SITE)\nimport dill\n"
              "dill.loads(base64.b64decode(json.load(open(sys.argv[1]))['x']))\n")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(state)], capture_output=True, text=True,
                         cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, check=False, timeout=120)
    assert out.returncode != 0 and "No module named 'tests'" in out.stderr, out.stderr[-500:]
