"""The sandbox's side of `ops checklist`: what its stand-ins answer for the items a cloud
environment asks its providers (ops.wiring hands these to the checklist as its ports).

Each answers for the sandbox's own stack and says what only a cloud environment can answer."""

from __future__ import annotations

from pathlib import Path

import httpx

from ops.environment import Environment

NO_STRIPE_ACCOUNT = "sandbox: no Stripe account, so registration is checked on staging and production"


def app_settings(root: Path) -> tuple[str, str]:
    """Item 1: the serving app's environment passes the app's own validation."""
    from autoenroll.config import ConfigurationError, load_settings
    from ops.sandbox.components import app_env
    from ops.sandbox.state import load_state

    state = load_state(root)
    try:
        load_settings(app_env(state, state.caddy.active_app, "checklist"))
    except ConfigurationError as exc:
        return "fail", str(exc)
    return "pass", "the serving app's environment passes the app's own validation (config.load_settings)"


def edge_tls(hsts: str) -> tuple[str, str]:
    """Item 3: Caddy's HSTS, and the TLS policy production's plan sets at Cloudflare (the sandbox has no edge)."""
    from stacks.plan import run_plan

    policy = run_plan("production").policies["cloudflare-tls"]
    ok = bool(hsts) and not policy
    return ("pass" if ok else "fail"), (f"HSTS '{hsts}' from Caddy; production plan: Cloudflare SSL strict, "
                                        f"TLS >= 1.2 ({policy or 'policy passes'})")


def heartbeat_recorder(env: Environment) -> tuple[str, str]:
    """Item 4: the heartbeat recorder (BetterStack's stand-in) answers."""
    if env.heartbeat_url is None:
        return "fail", "no backup heartbeat URL in the sandbox state"
    base = env.heartbeat_url.get_secret_value().rsplit("/ping/", 1)[0]
    alive = httpx.get(base + "/health", timeout=5).status_code == 200
    return ("pass" if alive else "fail"), ("heartbeat recorder answering (BetterStack's stand-in); Sentry is "
                                           "optional in the sandbox and set by the stack's sentryDsn secret")


def stripe_registration(_endpoint_id: str | None) -> str:
    """Item 5's registration half: there is no account to ask; the signature half runs for real."""
    return NO_STRIPE_ACCOUNT


def caddy_upstreams(root: Path) -> tuple[str, str]:
    """Item 10: Caddy (the sandbox's DNS) sends traffic to the app the state says serves."""
    from ops.sandbox.state import load_state
    from ops.sandbox.traffic_caddy import CaddyUpstreams

    state = load_state(root)
    with CaddyUpstreams(state.caddy_admin_url()) as switch:
        upstreams = switch.current_upstreams()
    wanted = f"127.0.0.1:{state.apps[state.caddy.active_app].port}"
    ok = upstreams == [wanted]
    return ("pass" if ok else "fail"), f"traffic -> {upstreams} (state: {state.caddy.active_app} at {wanted})"
