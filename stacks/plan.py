"""Run the Pulumi program offline under `pulumi.runtime.set_mocks`: the resource tree, the
stack outputs and the policy results, with no credentials and no Pulumi CLI.

Config comes from `Pulumi.<stack>.yaml`; secret config keys get recognisable sentinel
values, marked secret, so the plan can prove that no secret reaches a resource input or a
stack output in clear text.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stacks.config import APP, SECRET_KEYS, StackConfig, parse_config
from stacks.policies import ResourceView, cache_fits_the_plan, evaluate

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 - Pulumi's wire signature marking a secret
SIG_KEY = "4dabf18193072939515e22adb298388d"
SENTINEL = "PLAN-SECRET-"
MOCK_PASSWORD = SENTINEL + "neon-password"  # a provider-returned secret (inside connection strings)
LARGE_PROPS = ("user_data", "userData")


def secret_sentinel(key: str) -> str:
    return f"{SENTINEL}{key}"


@dataclass
class PlannedResource:
    type: str
    name: str
    parent: str
    protect: bool
    props: dict[str, Any]
    plain_secret_paths: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)  # names of explicit and input dependencies

    def view(self) -> ResourceView:
        return ResourceView(self.type, self.name, self.props, self.protect, tuple(self.plain_secret_paths))


@dataclass
class Plan:
    stack: str
    config: StackConfig
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    secret_outputs: list[str]
    policies: dict[str, list[str]]

    @property
    def passed(self) -> bool:
        return not any(self.policies.values())

    def to_json(self) -> dict[str, Any]:
        """A stable, secret-free rendering: the snapshot reviewers read as a diff."""
        return {
            "stack": self.stack,
            "resources": [{"type": r.type, "name": r.name, "parent": r.parent, "protect": r.protect,
                           "properties": _summarise(r.props)}
                          for r in sorted(self.resources, key=lambda r: (r.type, r.name))],
            "outputs": {k: ("[secret]" if k in self.secret_outputs else v) for k, v in sorted(self.outputs.items())},
            "policies": {name: {"passed": not v, "violations": v} for name, v in self.policies.items()},
            "cost": self.estimate().to_json(),
        }

    def estimate(self) -> Any:
        from stacks.cost import estimate

        # The other stack's committed file as it is: Free's CU-hours are shared by the project's computes.
        return estimate(self.stack, self.config, self.resources,
                        read_stack=lambda other: parse_config(namespaced_config(other), other))


def _digest(value: Any) -> dict[str, Any]:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return {"sha256": hashlib.sha256(text.encode()).hexdigest()[:16], "bytes": len(text)}


def _redact(value: Any) -> Any:
    """Secret values become a digest: a change still shows in the snapshot, the value never does.
    (Under the plan, secrets are sentinels, so even the digest reveals nothing real.)"""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return {"secret": _digest(value.get("value"))}
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _summarise(props: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in sorted(props.items()):
        if key.startswith("__"):
            continue  # the dynamic provider's pickled code
        value = _redact(value)
        out[key] = _digest(value) if key in LARGE_PROPS and isinstance(value, str) else value
    return out


def _plain_secret_paths(node: Any, path: str = "") -> list[str]:
    """Paths where a secret sentinel appears outside a secret wrapper in the wire format."""
    if isinstance(node, dict):
        if node.get(SIG_KEY) == SECRET_SIG:
            return []
        return [p for k, v in node.items() for p in _plain_secret_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _plain_secret_paths(v, f"{path}[{i}]")]
    if isinstance(node, str) and SENTINEL in node:
        return [path or "<value>"]
    return []


def read_stack_file(stack: str) -> dict[str, Any]:
    path = REPO_ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        from stacks.config import StackConfigError

        raise StackConfigError(f"stack: no {path.name} (stacks are staging and production)")
    raw = yaml.safe_load(path.read_text()) or {}
    config: dict[str, Any] = raw.get("config") or {}
    return config


def namespaced_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """`autoenroll:*` values from the stack file (namespace stripped), with test overrides merged."""
    values = {k.split(":", 1)[1]: v for k, v in read_stack_file(stack).items() if k.startswith(f"{APP}:")}
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return values


class MissingStackError(RuntimeError):
    """A StackReference names a stack that has no state yet (it has not come up)."""


def run_plan(stack: str, overrides: dict[str, Any] | None = None, *,
             existing_stacks: dict[str, dict[str, Any]] | None = None, organization: str = "organization") -> Plan:
    """Run the program for `stack` under mocks and evaluate every policy.

    `existing_stacks` (fully qualified name -> outputs) is the backend's state: a StackReference to
    a stack not in it fails, as it does on a real backend. None stands in plausible outputs."""
    import pulumi
    from google.protobuf import json_format
    from pulumi.runtime import mocks as pulumi_mocks

    values = namespaced_config(stack, overrides)
    config = parse_config(values, stack)  # fails fast, naming the key, before any resource exists

    recorded: list[PlannedResource] = []

    class RecordingMonitor(pulumi_mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            if request.type != "pulumi:pulumi:Stack" and request.custom:
                wire = json_format.MessageToDict(request.object)
                recorded.append(PlannedResource(
                    type=request.type, name=request.name, parent=request.parent.rsplit("::", 1)[-1],
                    protect=bool(request.protect), props={},
                    plain_secret_paths=[p for p in _plain_secret_paths(wire) if not p.startswith("__")],
                    depends_on=sorted({urn.rsplit("::", 1)[-1] for urn in request.dependencies})))
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            # Ids derive from the name, not the registration order (which is concurrent),
            # so the plan, and its snapshot, are the same on every run.
            n = int(hashlib.sha256(args.name.encode()).hexdigest()[:6], 16) % 100000
            outputs = dict(args.inputs)
            if args.typ == "pulumi:pulumi:StackReference" and existing_stacks is not None:
                name = str(args.inputs.get("name"))
                if name not in existing_stacks:
                    raise MissingStackError(f"unknown stack {name!r}: it has not come up yet "
                                            f"(existing: {', '.join(sorted(existing_stacks)) or 'none'})")
                return f"ref-{n}", {"name": name, "secretOutputNames": [], "outputs": existing_stacks[name]}
            if args.typ == "pulumi:pulumi:StackReference":
                return f"ref-{n}", {"name": args.name, "secretOutputNames": [], "outputs": {
                    "neon_project_id": "mock-project",
                    "neon_branches": {"main": {"id": "br-main-mock", "endpoint_id": "ep-main", "host": "h"}}}}
            outputs.update(_fake_outputs(args.typ, args.name, outputs, n))
            for item in recorded:
                if item.name == args.name and item.type == args.typ and not item.props:
                    item.props = {k: v for k, v in args.inputs.items() if not k.startswith("__")}
            return (str(n) if args.typ.startswith("hcloud:") else f"{args.name}-id"), outputs

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            if args.token == "hcloud:index/getSshKey:getSshKey":  # noqa: S105 - an invoke token, not a password
                fingerprint = str(args.args.get("fingerprint"))
                n = int(hashlib.sha256(fingerprint.encode()).hexdigest()[:6], 16) % 100000
                return {"id": n, "fingerprint": fingerprint, "name": f"key-{n}", "public_key": ""}, []
            return {}, None

    mocks = Mocks()
    # Pulumi's mocks run on this thread's current event loop. An asyncio.run() earlier in the same
    # process (a test, an async client) leaves the thread with none set, and Pulumi's Future() then
    # raises "no current event loop": each plan gets a loop of its own.
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_quiet_missing_stack)
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(mocks, project=APP, stack=stack, preview=False,
                             monitor=RecordingMonitor(mocks), organization=organization)
    pulumi.runtime.set_all_config(
        {f"{APP}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
        | {f"{APP}:{k}": secret_sentinel(k) for k in SECRET_KEYS},
        [f"{APP}:{k}" for k in SECRET_KEYS],
    )
    program = _import_program()
    captured: dict[str, Any] = {}
    secret_keys: list[str] = []

    async def collect(exports: dict[str, Any]) -> None:
        for key, value in exports.items():
            output = pulumi.Output.from_input(value)
            captured[key] = await output.future()
            if await output.is_secret():
                secret_keys.append(key)

    @pulumi_mocks.test  # type: ignore[untyped-decorator]
    def run() -> Any:
        return asyncio.ensure_future(collect(program.build(config)))

    run()
    resources = [r for r in recorded if r.props or r.type]
    plan = Plan(stack=stack, config=config, resources=resources, outputs=captured, secret_outputs=sorted(secret_keys),
                policies={})
    plan.policies = evaluate(stack, [r.view() for r in resources])
    plan.policies["fits-the-plan"] += cache_fits_the_plan(config)  # Redis is config, not a resource
    leaked = [k for k, v in captured.items() if k not in secret_keys and SENTINEL in json.dumps(v, default=str)]
    plan.policies["no-plain-secrets"] += [f"stack output {k}: secret in clear text" for k in leaked]
    return plan


def _quiet_missing_stack(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A MissingStackError is raised to run_plan's caller; Pulumi's other futures that saw it would
    each log it again as "Future exception was never retrieved" when collected (pages of tracebacks at
    the end of a test run, where they hid the run's summary). Anything else is logged as usual."""
    if isinstance(context.get("exception"), MissingStackError):
        return
    loop.default_exception_handler(context)


def _import_program() -> Any:
    import importlib

    return importlib.import_module("stacks.__main__")


def _fake_outputs(typ: str, name: str, inputs: dict[str, Any], n: int) -> dict[str, Any]:
    """Plausible computed outputs for the types the program reads back."""
    if typ == "hcloud:index/server:Server":
        return {"ipv4_address": f"203.0.113.{10 + n % 200}", "ipv6_address": f"2001:db8::{n}"}
    if typ == "hcloud:index/loadBalancer:LoadBalancer":
        return {"ipv4": "203.0.113.250"}
    if typ == "cloudflare:index/pagesProject:PagesProject":
        return {"subdomain": f"{inputs.get('name')}.pages.dev"}
    if typ == "tls:index/privateKey:PrivateKey":
        return {"privateKeyPem": f"{SENTINEL}origin-private-key", "publicKeyPem": "-----BEGIN PUBLIC KEY-----"}
    if typ == "tls:index/certRequest:CertRequest":
        return {"certRequestPem": "-----BEGIN CERTIFICATE REQUEST-----\nmock\n-----END CERTIFICATE REQUEST-----\n"}
    if typ == "cloudflare:index/originCaCertificate:OriginCaCertificate":
        return {"certificate": "-----BEGIN CERTIFICATE-----\nmock origin ca\n-----END CERTIFICATE-----\n"}
    if typ == "pulumi-python:dynamic:Resource":
        fakes: dict[str, Any] = {}
        if inputs.get("endpoint_type") == "read_only":
            host = f"ep-{name}-pooler.eu-central-1.aws.neon.tech"
            fakes = {"endpoint_id": f"ep-{name}", "endpoint_host": host.replace("-pooler", ""),
                     "pooled_uri": f"postgresql://{inputs.get('app_role')}:{MOCK_PASSWORD}@{host}/"
                                   f"{inputs.get('database_name')}?sslmode=require"}
        elif "region_id" in inputs:
            fakes = {"project_id": "mock-project", "default_branch_id": "br-main-mock"}
        elif "min_cu" in inputs:
            fakes = {"branch_id": inputs.get("adopt_id") or f"br-{inputs.get('name')}",
                     "endpoint_id": f"ep-{inputs.get('name')}", "endpoint_host": f"ep-{inputs.get('name')}.neon.tech"}
        elif "database" in inputs:
            host = f"ep-{name}.eu-central-1.aws.neon.tech"
            db = inputs.get("database")
            direct = f"postgresql://{inputs.get('owner_role')}:{MOCK_PASSWORD}@{host}/{db}?sslmode=require"
            pooled = f"postgresql://{inputs.get('role')}:{MOCK_PASSWORD}@{host.replace('ep-', 'ep-pooler-')}/{db}"
            fakes = {"direct_uri": direct, "pooled_uri": pooled + "?sslmode=require"}
        elif "enabled_events" in inputs:
            fakes = {"secret": f"whsec_{SENTINEL}stripe", "status": "enabled"}
        elif inputs.get("kind") == "heartbeats":
            fakes = {"url": f"https://uptime.betterstack.com/api/v1/heartbeat/{SENTINEL}heartbeat"}
        return {k: v for k, v in fakes.items() if inputs.get(k) is None}
    return {}
