"""`ops checklist`: the deployment checklist's items, each a check that runs and shows its evidence.

The items are the same in every environment; where one differs (a cloud environment asks
Cloudflare, BetterStack, Stripe and its stack's config file; the sandbox its stand-ins), it asks
a port ops.wiring builds (ChecklistPorts). The sandbox runs every item for real against its own
stack; where an item needs a SaaS account the sandbox does not have (Stripe's registration of
the webhook), the evidence says which part ran and which part only a cloud environment can answer.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from ops.environment import Environment
from ops.errors import OpsError, describe, is_dependency_error
from ops.health import judge_rotation, judge_versions
from ops.migrations import head_revision, schema_revision
from ops.paths import REPO_ROOT
from ops.ports import Candidate, Hosts, ObjectStore, Rotation
from ops.secrets import scrub_text

MAX_BACKUP_AGE = timedelta(hours=26)


@dataclass(frozen=True)
class Item:
    number: int
    title: str
    status: str  # pass | fail | skip
    evidence: str


# How long the auto-scaling item waits for a host's serving app to answer /ready.
READY_WAIT = 5


@dataclass(frozen=True)
class ChecklistPorts:
    """What the items check, as ops.wiring builds it for one environment: the checklist itself
    carries no per-kind variant, each item that differs asks its port."""

    hosts: Hosts  # auto-scaling: each host's serving version (`current`) answers /ready (`wait_ready`)
    host_names: Mapping[str, str]  # the hosts port's key of each app host -> its name, for the evidence
    objects: ObjectStore  # backups: the bucket that holds them
    configuration: Callable[[], tuple[str, str]]  # environment variables: (status, evidence)
    edge_tls: Callable[[str], tuple[str, str]]  # TLS, given the HSTS header the app's /health sent
    monitoring: Callable[[], tuple[str, str]]  # the heartbeat, the monitors and Sentry
    stripe_registration: Callable[[str | None], str]  # the webhook endpoint's registration; OpsError if wrong
    dns: Callable[[], tuple[str, str]]  # the public name points at the serving host
    rotation: Rotation | None = None  # auto-scaling behind a load balancer: every target healthy there


Check = Callable[[Environment, ChecklistPorts, "SyntheticTenant"], tuple[str, str]]


def stack_secrets(stack_file: Path) -> tuple[list[str], list[str], int]:
    """(missing, plain, total) for the secrets a stack needs, read from its Pulumi.<stack>.yaml.

    `pulumi config set --secret` writes `{secure: v1:...}` (ciphertext) into that file, so
    presence and encryption can be checked without the CLI or the passphrase.
    """
    import os

    import yaml

    from stacks.config import APP, SECRET_KEYS
    from stacks.prerequisites import PREREQUISITES

    config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    wanted = [f"{APP}:{k}" for k in SECRET_KEYS] + ["hcloud:token", "cloudflare:apiToken"]
    # The providers read HCLOUD_TOKEN/CLOUDFLARE_API_TOKEN (what CI passes) when the stack secret is absent.
    alternative = {p.name: p.alternative for p in PREREQUISITES if p.alternative}
    missing = [k for k in wanted if k not in config and not os.environ.get(alternative.get(k, ""), "")]
    plain = [k for k in wanted if k in config and not (isinstance(config[k], dict) and "secure" in config[k])]
    return missing, plain, len(wanted)


def stack_config_file(stack: str) -> Path:
    """The stack's Pulumi.<stack>.yaml: the checkout's, or the folder OPS_STACK_CONFIG_DIR names
    (a checkout of the infrastructure repository elsewhere; the lab's own)."""
    import os

    return Path(os.environ.get("OPS_STACK_CONFIG_DIR") or REPO_ROOT) / f"Pulumi.{stack}.yaml"


def _migrations(env: Environment, _ports: ChecklistPorts, _tenant: SyntheticTenant) -> tuple[str, str]:
    # Only the branch this environment serves must be at head: that is the one `ops db migrate --env E`
    # migrates. The others are listed: staging's stack also has development, which only its refresh
    # migrates, and a first release runs staging's checklist before production's database is migrated.
    head = head_revision()
    found = {b: schema_revision(env.database_url(b)) for b in sorted(env.database_urls)}
    behind = [b for b, rev in found.items() if rev != head and b == env.branch]
    evidence = ", ".join(f"{b}={rev}" for b, rev in found.items()) + f" (head {head})"
    return ("fail" if behind else "pass"), evidence


def _hsts(env: Environment) -> str:
    return str(httpx.get(env.public_url + "/health", timeout=10).headers.get("strict-transport-security", ""))


def _configuration(_env: Environment, ports: ChecklistPorts, _tenant: SyntheticTenant) -> tuple[str, str]:
    return ports.configuration()


def _tls(env: Environment, ports: ChecklistPorts, _tenant: SyntheticTenant) -> tuple[str, str]:
    return ports.edge_tls(_hsts(env))


def _monitoring(_env: Environment, ports: ChecklistPorts, _tenant: SyntheticTenant) -> tuple[str, str]:
    return ports.monitoring()


def _dns(_env: Environment, ports: ChecklistPorts, _tenant: SyntheticTenant) -> tuple[str, str]:
    return ports.dns()


def _stripe(env: Environment, ports: ChecklistPorts, tenant: SyntheticTenant) -> tuple[str, str]:
    """Registration (its port: Stripe's API, or the sandbox saying it has no account), then the
    app's signature check, both ways, on a synthetic tenant."""
    from autoenroll.stripe_webhook import WEBHOOK_PATH, sign

    hook = env.stripe_webhook
    if hook is None:
        return "fail", "no stripe_webhook in the stack outputs (the stack's Billing component)"
    try:
        registration = ports.stripe_registration(hook.endpoint_id)
    except OpsError as exc:
        return "fail", str(exc)
    client, auth = tenant.client, tenant.auth

    def own_tenant() -> dict[str, Any]:
        return dict(client.get("/api/me", headers=auth).json()["tenant"])

    me = own_tenant()
    tenant_id, before = me["id"], me["billing_status"]
    now = int(time.time())
    event = {"id": f"evt_checklist_{uuid.uuid4().hex}", "object": "event", "type": "customer.subscription.updated",
             "created": now, "data": {"object": {"id": "sub_checklist", "object": "subscription",
                                                 "customer": f"cus_checklist_{tenant_id[:8]}", "status": "active",
                                                 "metadata": {"tenant_id": tenant_id}}}}
    body = json.dumps(event).encode()

    def deliver(signature: str | None) -> httpx.Response:
        headers = {"Content-Type": "application/json", **({"Stripe-Signature": signature} if signature else {})}
        return client.post(WEBHOOK_PATH, content=body, headers=headers)

    unsigned = deliver(None).status_code
    forged = deliver(sign(body, "whsec_not_the_endpoints_secret", now)).status_code
    untouched = own_tenant()["billing_status"]
    signature = sign(body, hook.secret.get_secret_value(), now)
    first = deliver(signature)
    again = deliver(signature)
    applied = own_tenant()["billing_status"]
    outcome = first.json().get("outcome") if first.status_code == 200 else first.status_code
    redelivery = again.json().get("outcome") if again.status_code == 200 else again.status_code
    ok = (unsigned == 400 and forged == 400 and untouched == before and outcome == "applied"
          and redelivery == "duplicate" and applied == "active")
    return ("pass" if ok else "fail"), (
        f"{registration}; unsigned -> {unsigned}, wrong secret -> {forged} (status stays {untouched}), "
        f"signed -> {outcome} (status {applied}), redelivered -> {redelivery}")


class SyntheticTenant:
    """One synthetic tenant (`@example.invalid`) shared by the items that need an account.

    Sharing keeps a run to two sign-ins (the app allows ten a minute from one address, and
    a release may run the checklist twice in a row); whatever is left is erased at the end.
    """

    def __init__(self, env: Environment) -> None:
        self.client = httpx.Client(base_url=env.public_url, timeout=300)
        self._auth: dict[str, str] | None = None

    @property
    def auth(self) -> dict[str, str]:
        if self._auth is None:
            email = f"checklist-{uuid.uuid4().hex[:10]}@example.invalid"
            password = uuid.uuid4().hex
            created = self.client.post("/api/signup", json={"company": "Checklist synthetic Ltd", "email": email,
                                                            "full_name": "Checklist", "password": password})
            created.raise_for_status()
            login = self.client.post("/api/auth/login", json={"email": email, "password": password})
            login.raise_for_status()
            self._auth = {"Authorization": f"Bearer {login.json()['token']}"}
        return self._auth

    def erase(self) -> dict[str, Any]:
        """Erase the tenant (GDPR route) and forget it; the next use signs up a new one."""
        report: dict[str, Any] = self.client.delete("/api/tenant", headers=self.auth).json()
        self._auth = None
        return report

    def close(self) -> None:
        try:
            if self._auth is not None:
                self.erase()
        finally:
            self.client.close()


def _payroll(rows: int) -> bytes:
    from autoenroll.validation.rules import check_letter

    lines = ["employee_id,ppsn,first_name,last_name,date_of_birth,employment_start,gross_pay,pay_frequency"]
    for i in range(rows):
        digits = f"{2000000 + i:07d}"
        lines.append(f"C{i},{digits}{check_letter(digits)},Synthetic,Person,1985-05-05,2020-01-01,3000,monthly")
    return ("\n".join(lines) + "\n").encode()


def _upload_flow(_env: Environment, _ports: ChecklistPorts, tenant: SyntheticTenant) -> tuple[str, str]:
    client, auth = tenant.client, tenant.auth
    created = client.post("/api/uploads", headers={**auth, "X-Filename": "synthetic.csv"}, content=_payroll(5))
    if created.status_code != 201:
        return "fail", f"upload answered {created.status_code}: {created.text[:200]}"
    run_id = created.json()["run_id"]
    pdf = client.get(f"/api/runs/{run_id}/report.pdf", headers=auth)
    ok = pdf.content.startswith(b"%PDF")
    return ("pass" if ok else "fail"), f"synthetic upload -> run {run_id} -> PDF {len(pdf.content)} bytes"


def _gdpr(_env: Environment, _ports: ChecklistPorts, tenant: SyntheticTenant) -> tuple[str, str]:
    # The tenant holds the earlier items' data (and one more upload): erase all of it.
    tenant.client.post("/api/uploads", headers={**tenant.auth, "X-Filename": "gdpr.csv"}, content=_payroll(3))
    report = tenant.erase()
    deleted = report.get("deleted", {})
    # `erased` is the app's own second look (rows, objects, cache keys); `deleted` shows there was data.
    ok = bool(report.get("erased")) and sum(deleted.get("rows", {}).values()) > 0
    return ("pass" if ok else "fail"), (f"synthetic tenant erased: deleted {deleted}; "
                                        f"remaining afterwards: {report.get('remaining', {})}")


def _load(_env: Environment, _ports: ChecklistPorts, tenant: SyntheticTenant) -> tuple[str, str]:
    started = time.monotonic()
    created = tenant.client.post("/api/uploads", headers={**tenant.auth, "X-Filename": "load.csv"},
                                 content=_payroll(10_000))
    seconds = time.monotonic() - started
    if created.status_code != 201:
        return "fail", f"10,000-record upload answered {created.status_code}"
    rows = created.json()["summary"]["rows"]
    per_500 = seconds / 20
    ok = per_500 < 5 and rows == 10_000
    return ("pass" if ok else "fail"), (f"{rows:,} records validated and stored in {seconds:.1f} s "
                                        f"({per_500:.2f} s per 500; target < 5 s)")


def _backups(env: Environment, ports: ChecklistPorts, _tenant: SyntheticTenant) -> tuple[str, str]:
    from ops.backup.usecase import list_backups

    backups = list_backups(env.name, ports.objects)
    verified = [(mf, v) for mf, v in backups if v and v.ok]
    if not verified:
        return "fail", f"{len(backups)} backups, none verified (ops backup verify --latest)"
    newest, _ = verified[0]
    age = datetime.now(UTC) - newest.finished_at
    ok = age < MAX_BACKUP_AGE and env.heartbeat_url is not None
    return ("pass" if ok else "fail"), (f"newest verified backup {newest.id}, {age.total_seconds() / 3600:.1f} h "
                                        f"old (limit 26 h); heartbeat {'set' if env.heartbeat_url else 'missing'}")


def _scaling(_env: Environment, ports: ChecklistPorts, _tenant: SyntheticTenant) -> tuple[str, str]:
    """Each app host's serving version answers /ready, as the hosts port judges a deploy's
    candidate (`current`, then `wait_ready`): over SSH on a server, where the app listens on the
    host's loopback and this runner cannot reach a private IP; directly in the sandbox."""
    states, ready = {}, set()
    versions_of: dict[str, str] = {}
    for key, name in ports.host_names.items():
        version, address = ports.hosts.current(key)
        versions_of[name] = version
        if address == "-":
            states[name] = "nothing deployed"
            continue
        problem = ports.hosts.wait_ready(Candidate(key, version, address), READY_WAIT)
        states[name] = f"{version} ready" if problem is None else f"{version} not ready: {problem[-120:]}"
        if problem is None:
            ready.add(name)
    bad = [name for name in states if name not in ready]
    # The scale shape: one version on every host (a rolling deploy stopped half-way leaves two),
    # and behind a load balancer every host it should send to is a target and healthy there.
    same, versions = judge_versions(versions_of)
    shape_ok, shape = (True, "") if ports.rotation is None else judge_rotation(ports.rotation)
    return ("fail" if bad or not states or not same or not shape_ok else "pass"), (
        f"app hosts: {states}" + (f"; not ready: {bad}" if bad else "") + f"; {versions}"
        + (f"; {shape}" if shape else ""))


def _procedures(_env: Environment, _ports: ChecklistPorts, _tenant: SyntheticTenant) -> tuple[str, str]:
    runbooks = sorted(p.name for p in (REPO_ROOT / "runbooks").glob("*.md") if p.name != "README.md")
    tests = " ".join(p.read_text() for p in (REPO_ROOT / "tests" / "drills").glob("test_*.py")) \
        if (REPO_ROOT / "tests" / "drills").exists() else ""
    untested = [r for r in runbooks if r not in tests]
    return ("fail" if untested or not runbooks else "pass"), (
        f"{len(runbooks)} runbooks ({', '.join(runbooks)}), each run by tests/drills" +
        (f"; untested: {untested}" if untested else ""))


# Each item that differs by environment asks a port for its part (ChecklistPorts, built by ops.wiring).
ITEMS: list[tuple[str, Check]] = [
    ("Set all environment variables", _configuration),
    ("Run database migrations", _migrations),
    ("Configure SSL certificates", _tls),
    ("Set up monitoring (Sentry, BetterStack)", _monitoring),
    ("Configure Stripe webhooks", _stripe),
    ("Test file upload flow end-to-end", _upload_flow),
    ("Verify GDPR data deletion", _gdpr),
    ("Load test with 10,000 records", _load),
    ("Set up automated backups", _backups),
    ("Configure DNS records", _dns),
    ("Enable auto-scaling (replicas and health)", _scaling),
    ("Document emergency procedures", _procedures),
]


def run_item(check: Check, env: Environment, ports: ChecklistPorts) -> tuple[str, str]:
    """One item alone, with a synthetic tenant of its own (erased afterwards)."""
    tenant = SyntheticTenant(env)
    try:
        return check(env, ports, tenant)
    finally:
        tenant.close()


def run(env: Environment, ports: ChecklistPorts, progress: Callable[[str], None] = lambda _m: None) -> list[Item]:
    """Every item (ITEMS) in order; an item whose dependency does not answer fails, the others still run."""
    items = []
    tenant = SyntheticTenant(env)
    try:
        for number, (title, check) in enumerate(ITEMS, 1):
            progress(f"{number}. {title}")
            try:
                status, evidence = check(env, ports, tenant)
            except Exception as exc:  # an unreachable dependency fails its item; the others still run
                if not (is_dependency_error(exc) or isinstance(exc, OSError)):
                    raise
                status, evidence = "fail", f"{exc.__class__.__name__}: {scrub_text(describe(exc))}"
            items.append(Item(number, title, status, evidence))
    finally:
        try:
            tenant.close()  # nothing synthetic is left behind, even when an item failed
        except Exception as exc:
            if not (is_dependency_error(exc) or isinstance(exc, OSError)):
                raise
            progress(f"could not erase the synthetic tenant: {exc.__class__.__name__}")
    return items


