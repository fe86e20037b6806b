"""A cloud environment's side of `ops checklist`: what its providers (Cloudflare, BetterStack,
Stripe) and its stack's config file answer for the checklist's items. ops.wiring hands these
to the checklist as its ports; the checklist itself carries no per-kind variant."""

from __future__ import annotations

from ops.checklist import stack_config_file, stack_secrets
from ops.environment import Environment
from ops.errors import OpsError


def stack_secrets_set(env: Environment) -> tuple[str, str]:
    """Item 1: every secret the stack needs is set, each encrypted, in its Pulumi.<stack>.yaml."""
    stack_file = stack_config_file(env.name)
    if not stack_file.is_file():
        return "fail", f"{stack_file}: no such stack config file (OPS_STACK_CONFIG_DIR names its folder)"
    missing, plain, total = stack_secrets(stack_file)
    if missing or plain:
        problems = ([f"not set: {missing}"] if missing else []) + ([f"in clear text: {plain}"] if plain else [])
        return "fail", (f"{stack_file.name}: {'; '.join(problems)} "
                        f"(pulumi config set --secret KEY --stack {env.name})")
    return "pass", f"{stack_file.name}: all {total} secrets set, each as an encrypted `secure:` value"


def edge_tls(env: Environment, hsts: str) -> tuple[str, str]:
    """Item 3: the public URL is https (httpx verified the certificate), with HSTS, behind Cloudflare's strict TLS."""
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


def monitoring(env: Environment) -> tuple[str, str]:
    """Item 4: the backup heartbeat, BetterStack's monitors and Sentry's DSN."""
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


def stripe_registration(env: Environment, endpoint_id: str | None) -> str:
    """Item 5's registration half: the endpoint as Stripe has it: the app's URL, enabled,
    subscribed to every event the app handles. Raises OpsError naming what is wrong."""
    from autoenroll.stripe_webhook import HANDLED_EVENTS, WEBHOOK_PATH
    from ops.adapters.cloud.clients import StripeClient

    if endpoint_id is None:
        raise OpsError("stack outputs: stripe_webhook has no endpoint_id (the stack's Billing component)")
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


def cloudflare_dns(env: Environment) -> tuple[str, str]:
    """Item 10: the app's record in Cloudflare: one proxied A record at the stack's origin (or a failed-over server)."""
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
