"""`ops checklist`: the deployment checklist's items, each a check that runs and shows its evidence.

The sandbox runs every item for real against its own stack; where an item needs a SaaS
account the sandbox does not have (Stripe's registration of the webhook), the evidence
says which part ran and which part only a cloud environment can answer.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from ops.environment import Environment
from ops.errors import OpsError, describe, is_dependency_error
from ops.migrations import head_revision, schema_revision
from ops.paths import REPO_ROOT
from ops.secrets import scrub_text

MAX_BACKUP_AGE = timedelta(hours=26)


@dataclass(frozen=True)
class Item:
    number: int
    title: str
    status: str  # pass | fail | skip
    evidence: str


Check = Callable[[Environment, "SyntheticTenant"], tuple[str, str]]


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


def _env_vars_cloud(env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    stack_file = stack_config_file(env.name)
    if not stack_file.is_file():
        return "fail", f"{stack_file}: no such stack config file (OPS_STACK_CONFIG_DIR names its folder)"
    missing, plain, total = stack_secrets(stack_file)
    if missing or plain:
        problems = ([f"not set: {missing}"] if missing else []) + ([f"in clear text: {plain}"] if plain else [])
        return "fail", (f"{stack_file.name}: {'; '.join(problems)} "
                        f"(pulumi config set --secret KEY --stack {env.name})")
    return "pass", f"{stack_file.name}: all {total} secrets set, each as an encrypted `secure:` value"


def _env_vars_sandbox(_env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    from autoenroll.config import ConfigurationError, load_settings
    from ops.paths import sandbox_dir
    from ops.sandbox.components import app_env
    from ops.sandbox.state import load_state

    state = load_state(sandbox_dir())
    try:
        load_settings(app_env(state, state.caddy.active_app, "checklist"))
    except ConfigurationError as exc:
        return "fail", str(exc)
    return "pass", "the serving app's environment passes the app's own validation (config.load_settings)"


def _migrations(env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
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


def _tls_sandbox(env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    from stacks.plan import run_plan

    hsts = _hsts(env)
    policy = run_plan("production").policies["cloudflare-tls"]
    ok = bool(hsts) and not policy
    return ("pass" if ok else "fail"), (f"HSTS '{hsts}' from Caddy; production plan: Cloudflare SSL strict, "
                                        f"TLS >= 1.2 ({policy or 'policy passes'})")


def _tls_cloud(env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    hsts = _hsts(env)
    if env.dns is None:
        return "fail", "no dns in the stack outputs"
    edge = cloudflare_tls(env.dns.zone_id)
    ok = env.public_url.startswith("https://") and bool(hsts) and edge.startswith("ok")
    return ("pass" if ok else "fail"), f"{env.public_url}: certificate verified by httpx, HSTS '{hsts}'; {edge}"


def cloudflare_tls(zone_id: str) -> str:
    """Cloudflare's side of TLS: SSL mode strict (it verifies the origin's certificate), TLS >= 1.2."""
    from ops.adapters.cloud.clients import CloudflareClient

    with CloudflareClient.from_environ() as client:
        mode, minimum = client.zone_setting(zone_id, "ssl"), client.zone_setting(zone_id, "min_tls_version")
    ok = mode == "strict" and minimum in ("1.2", "1.3")
    return f"{'ok' if ok else 'wrong'}: Cloudflare SSL mode {mode}, minimum TLS {minimum} (want strict, >= 1.2)"


def _monitoring_sandbox(env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    if env.heartbeat_url is None:
        return "fail", "no backup heartbeat URL in the sandbox state"
    base = env.heartbeat_url.get_secret_value().rsplit("/ping/", 1)[0]
    alive = httpx.get(base + "/health", timeout=5).status_code == 200
    return ("pass" if alive else "fail"), ("heartbeat recorder answering (BetterStack's stand-in); Sentry is "
                                           "optional in the sandbox and set by the stack's sentryDsn secret")


def _monitoring_cloud(env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    if env.heartbeat_url is None:
        return "fail", "no backup heartbeat URL in the stack outputs"
    return betterstack_and_sentry(env)


def betterstack_and_sentry(env: Environment) -> tuple[str, str]:
    """Every monitor the stack made exists and reports up; Sentry's DSN is a stack secret."""
    from ops.adapters.cloud.clients import BetterStackClient

    monitor_ids = env.monitor_ids
    states = {}
    with BetterStackClient.from_environ() as client:
        for host, monitor_id in sorted(monitor_ids.items()):
            data = client.get("monitors", str(monitor_id))
            states[host] = "missing" if data is None else str(data["attributes"].get("status"))
    missing, plain, _ = stack_secrets(stack_config_file(env.name))
    sentry = "autoenroll:sentryDsn" not in missing + plain
    ok = bool(states) and all(v == "up" for v in states.values()) and sentry
    return ("pass" if ok else "fail"), (f"BetterStack monitors {states or 'none in the outputs'}; backup heartbeat "
                                        f"{'set' if env.heartbeat_url else 'missing'}; Sentry DSN "
                                        f"{'a stack secret' if sentry else 'not set as a secret'}")


def _stripe_registration(env: Environment, endpoint_id: str) -> str:
    """The endpoint as Stripe has it: the app's URL, enabled, subscribed to every event the app handles."""
    from autoenroll.stripe_webhook import HANDLED_EVENTS, WEBHOOK_PATH
    from ops.adapters.cloud.clients import StripeClient

    with StripeClient.from_environ() as client:
        endpoint = client.get_webhook_endpoint(endpoint_id)
    if endpoint is None:
        raise OpsError(f"Stripe has no webhook endpoint {endpoint_id} (deleted in the dashboard?)")
    problems = []
    wanted_url = env.public_url + WEBHOOK_PATH
    if endpoint.get("url") != wanted_url:
        problems.append(f"url {endpoint.get('url')} is not {wanted_url}")
    if endpoint.get("status") != "enabled":
        problems.append(f"status {endpoint.get('status')}")
    events = set(endpoint.get("enabled_events") or [])
    missing = sorted(set(HANDLED_EVENTS) - events) if "*" not in events else []
    if missing:
        problems.append(f"not subscribed to {missing}")
    if problems:
        raise OpsError(f"Stripe endpoint {endpoint_id}: " + "; ".join(problems))
    return f"Stripe endpoint {endpoint_id} -> {endpoint['url']}, enabled, {len(HANDLED_EVENTS)} events"


def _stripe(env: Environment, tenant: SyntheticTenant) -> tuple[str, str]:
    """Registration (Stripe's API), then the app's signature check, both ways, on a synthetic tenant."""
    from autoenroll.stripe_webhook import WEBHOOK_PATH, sign

    hook = env.stripe_webhook
    if hook is None:
        return "fail", "no stripe_webhook in the stack outputs (the stack's Billing component)"
    try:
        registration = (_stripe_registration(env, hook.endpoint_id) if hook.endpoint_id else
                        "sandbox: no Stripe account, so registration is checked on staging and production")
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


def _upload_flow(_env: Environment, tenant: SyntheticTenant) -> tuple[str, str]:
    client, auth = tenant.client, tenant.auth
    created = client.post("/api/uploads", headers={**auth, "X-Filename": "synthetic.csv"}, content=_payroll(5))
    if created.status_code != 201:
        return "fail", f"upload answered {created.status_code}: {created.text[:200]}"
    run_id = created.json()["run_id"]
    pdf = client.get(f"/api/runs/{run_id}/report.pdf", headers=auth)
    ok = pdf.content.startswith(b"%PDF")
    return ("pass" if ok else "fail"), f"synthetic upload -> run {run_id} -> PDF {len(pdf.content)} bytes"


def _gdpr(_env: Environment, tenant: SyntheticTenant) -> tuple[str, str]:
    # The tenant holds the earlier items' data (and one more upload): erase all of it.
    tenant.client.post("/api/uploads", headers={**tenant.auth, "X-Filename": "gdpr.csv"}, content=_payroll(3))
    report = tenant.erase()
    deleted = report.get("deleted", {})
    # `erased` is the app's own second look (rows, objects, cache keys); `deleted` shows there was data.
    ok = bool(report.get("erased")) and sum(deleted.get("rows", {}).values()) > 0
    return ("pass" if ok else "fail"), (f"synthetic tenant erased: deleted {deleted}; "
                                        f"remaining afterwards: {report.get('remaining', {})}")


def _load(_env: Environment, tenant: SyntheticTenant) -> tuple[str, str]:
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


def _backups(env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    from ops.adapters.s3_store import S3ObjectStore
    from ops.backup.usecases import list_backups

    backups = list_backups(env.name, S3ObjectStore(env.storage, "backups"))
    verified = [(mf, v) for mf, v in backups if v and v.ok]
    if not verified:
        return "fail", f"{len(backups)} backups, none verified (ops backup verify --latest)"
    newest, _ = verified[0]
    age = datetime.now(UTC) - newest.finished_at
    ok = age < MAX_BACKUP_AGE and env.heartbeat_url is not None
    return ("pass" if ok else "fail"), (f"newest verified backup {newest.id}, {age.total_seconds() / 3600:.1f} h "
                                        f"old (limit 26 h); heartbeat {'set' if env.heartbeat_url else 'missing'}")


def cloudflare_dns(env: Environment) -> tuple[str, str]:
    """The app's record in Cloudflare: one proxied A record at the stack's origin (or a failed-over server)."""
    from ops.adapters.cloud.clients import CloudflareClient

    dns = env.dns
    if dns is None:
        return "fail", "no dns in the stack outputs"
    with CloudflareClient.from_environ() as client:
        records = client.dns_records(dns.zone_id, dns.app_record_name, "A")
    origins: dict[str, str] = {h.address: h.role for h in env.app_hosts if h.address}
    if env.load_balancer_ipv4:
        origins = {env.load_balancer_ipv4: "load balancer"}
    if len(records) != 1:
        return "fail", f"{dns.app_record_name}: {len(records)} A records in Cloudflare (want exactly 1)"
    record = records[0]
    target = origins.get(record["content"])
    ok = target is not None and record.get("proxied") is True
    return ("pass" if ok else "fail"), (f"{dns.app_record_name} A {record['content']} "
                                        f"({target or 'not a server of this stack'}), "
                                        f"{'proxied' if record.get('proxied') else 'NOT proxied (origin exposed)'}")


def _dns_cloud(env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    return cloudflare_dns(env)


def _dns_sandbox(_env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    from ops.paths import sandbox_dir
    from ops.sandbox.state import load_state
    from ops.sandbox.traffic_caddy import CaddyTrafficSwitch

    state = load_state(sandbox_dir())
    with CaddyTrafficSwitch(state.caddy_admin_url()) as switch:
        upstreams = switch.current_upstreams()
    wanted = f"127.0.0.1:{state.apps[state.caddy.active_app].port}"
    ok = upstreams == [wanted]
    return ("pass" if ok else "fail"), f"traffic -> {upstreams} (state: {state.caddy.active_app} at {wanted})"


def _scaling_cloud(env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    """Each app host's serving container answers /ready, asked on the host over SSH (the deploy
    script's `current` and `ready`): the app listens on the host's loopback, and this runner
    cannot reach a private IP, so SSH is the way in, as for a deploy."""
    from ops.wiring import ssh

    client, states, ready = ssh(), {}, set()
    for host in env.app_hosts:
        if not host.address:
            states[host.name] = "no ipv4 in the stack outputs"
            continue
        version, address = client.run(host.address, ["current"]).stdout.decode().split()[:2]
        if address == "-":
            states[host.name] = "nothing deployed"
            continue
        done = client.run(host.address, ["ready", address, "5"], check=False)
        said = (done.stdout or done.stderr).decode(errors="replace").strip()[-120:]
        states[host.name] = f"{version} ready" if done.returncode == 0 else f"{version} not ready: {said}"
        if done.returncode == 0:
            ready.add(host.name)
    bad = [name for name in states if name not in ready]
    return ("fail" if bad or not states else "pass"), (
        f"app hosts (over SSH): {states}" + (f"; not ready: {bad}" if bad else ""))


def _scaling(env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    states = {}
    for host in env.app_hosts:
        try:
            states[host.name] = httpx.get(host.url + "/ready", timeout=5).status_code
        except httpx.HTTPError as exc:
            states[host.name] = exc.__class__.__name__  # type: ignore[assignment]
    bad = [name for name, status in states.items() if status != 200]
    return ("fail" if bad else "pass"), f"app hosts /ready: {states}" + (f"; not ready: {bad}" if bad else "")


def _procedures(_env: Environment, _tenant: SyntheticTenant) -> tuple[str, str]:
    runbooks = sorted(p.name for p in (REPO_ROOT / "runbooks").glob("*.md") if p.name != "README.md")
    tests = " ".join(p.read_text() for p in (REPO_ROOT / "tests" / "drills").glob("test_*.py")) \
        if (REPO_ROOT / "tests" / "drills").exists() else ""
    untested = [r for r in runbooks if r not in tests]
    return ("fail" if untested or not runbooks else "pass"), (
        f"{len(runbooks)} runbooks ({', '.join(runbooks)}), each run by tests/drills" +
        (f"; untested: {untested}" if untested else ""))


# An item that differs by kind of environment names both variants, (sandbox, cloud); which
# one runs is the wiring's choice (ops.wiring.checklist_checks), not this module's.
ITEMS: list[tuple[str, Check | tuple[Check, Check]]] = [
    ("Set all environment variables", (_env_vars_sandbox, _env_vars_cloud)),
    ("Run database migrations", _migrations),
    ("Configure SSL certificates", (_tls_sandbox, _tls_cloud)),
    ("Set up monitoring (Sentry, BetterStack)", (_monitoring_sandbox, _monitoring_cloud)),
    ("Configure Stripe webhooks", _stripe),
    ("Test file upload flow end-to-end", _upload_flow),
    ("Verify GDPR data deletion", _gdpr),
    ("Load test with 10,000 records", _load),
    ("Set up automated backups", _backups),
    ("Configure DNS records", (_dns_sandbox, _dns_cloud)),
    ("Enable auto-scaling (replicas and health)", (_scaling, _scaling_cloud)),
    ("Document emergency procedures", _procedures),
]


def run_item(check: Check, env: Environment) -> tuple[str, str]:
    """One item alone, with a synthetic tenant of its own (erased afterwards)."""
    tenant = SyntheticTenant(env)
    try:
        return check(env, tenant)
    finally:
        tenant.close()


def run(env: Environment, checks: list[tuple[str, Check]],
        progress: Callable[[str], None] = lambda _m: None) -> list[Item]:
    items = []
    tenant = SyntheticTenant(env)
    try:
        for number, (title, check) in enumerate(checks, 1):
            progress(f"{number}. {title}")
            try:
                status, evidence = check(env, tenant)
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


