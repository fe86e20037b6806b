"""`ops doctor --stack S`: every missing or placeholder prerequisite of a stack, in one run.

Offline (the default) it reads only the stack file (`Pulumi.<stack>.yaml`, or OPS_STACK_CONFIG_DIR's copy)
and the environment: each stack secret the program needs and whether it is encrypted, the providers'
credentials and the variables the jobs read, every placeholder value. The list and the wording come
from `stacks.prerequisites`, which the program itself checks before `pulumi preview`/`up` registers
anything, so the doctor and the program cannot disagree.

With `--online` (and the credentials in the environment) it also asks the providers what only they
know and that costs one GET each: whether the Cloudflare token is active and has the rights the stack
needs, whether R2 is enabled on the account, whether the Pages project exists (its GitHub app must
be installed for the repository's owner), and which zone rulesets, DNS records and Hetzner SSH keys
already exist and would collide with what the stack creates (adopt them with `pulumi import`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ops.errors import ConfigError, ProviderAPIError
from ops.paths import REPO_ROOT

# The permission groups (Cloudflare's API names; the dashboard says "Edit" for "Write") each API
# family the stack calls needs: a token without one fails half-way through the first `pulumi up`.
CLOUDFLARE_PERMISSIONS = ("DNS Write", "Zone Settings Write", "Zone WAF Write", "Cache Settings Write",
                          "SSL and Certificates Write", "Workers R2 Storage Write", "Pages Write")
# The phases of the zone rulesets stacks/edge.py creates: Cloudflare keeps one zone entry-point
# ruleset per phase, so one made earlier in the dashboard collides ("exceeded maximum number of zone rulesets").
# Phase -> the stack's resource of that phase (stacks/edge.py), for the `pulumi import` line.
RULESET_PHASES = {"http_request_firewall_managed": "edge-waf-managed",
                  "http_request_firewall_custom": "edge-waf-custom", "http_ratelimit": "edge-ratelimit",
                  "http_request_cache_settings": "edge-cache"}
HCLOUD_URL = "https://api.hetzner.cloud/v1"


def import_command(stack: str, type_token: str, name: str, provider_id: str, component: tuple[str, str]) -> str:
    """`pulumi import` of an existing resource as the stack's child of `component` (type token, name): the
    program's resources are children of components, so the import names the parent's URN."""
    kind, parent = component
    urn = f"urn:pulumi:{stack}::autoenroll::{kind}::{parent}"
    return f"pulumi import {type_token} {name} '{provider_id}' --parent '{parent}={urn}' --stack {stack}"


@dataclass(frozen=True)
class Finding:
    """One line of the report. `missing` findings make the exit code 2; `note`s inform only."""

    key: str
    problem: str
    where: str
    how: str
    severity: str = "missing"


@dataclass
class Report:
    stack: str
    stack_file: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "missing" for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "stack_file": self.stack_file, "ok": self.ok,
                "missing": sum(f.severity == "missing" for f in self.findings),
                "findings": [asdict(f) for f in self.findings]}


def stack_file(stack: str) -> Path:
    """The stack's Pulumi.<stack>.yaml: the checkout's, or OPS_STACK_CONFIG_DIR's (as `ops checklist` reads it)."""
    return Path(os.environ.get("OPS_STACK_CONFIG_DIR") or REPO_ROOT) / f"Pulumi.{stack}.yaml"


def read_stack_config(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise ConfigError(f"{path}: no such stack file", hint="the stacks are staging and production; "
                          "OPS_STACK_CONFIG_DIR names another folder holding Pulumi.<stack>.yaml")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML ({exc.__class__.__name__})") from None
    config = document.get("config") if isinstance(document, dict) else None
    return dict(config) if isinstance(config, dict) else {}


def _pulumi_logged_in(environ: Mapping[str, str]) -> bool:
    """A Pulumi backend is reachable without PULUMI_ACCESS_TOKEN after `pulumi login` (its credentials file)
    or with a self-managed backend (PULUMI_BACKEND_URL)."""
    home = Path(environ.get("PULUMI_HOME") or Path.home() / ".pulumi")
    return bool(environ.get("PULUMI_BACKEND_URL")) or (home / "credentials.json").is_file()


def offline(stack: str, environ: Mapping[str, str]) -> Report:
    """What the stack file and the environment alone say is missing."""
    from stacks.config import APP, ENVIRONMENTS
    from stacks.prerequisites import missing, placeholders

    if stack not in ENVIRONMENTS:
        raise ConfigError(f"--stack: must be one of {', '.join(ENVIRONMENTS)}; got {stack!r}")
    path = stack_file(stack)
    config = read_stack_config(path)

    def stack_secret(name: str) -> str | None:
        if name not in config:
            return None
        value = config[name]
        return "secure" if isinstance(value, dict) and "secure" in value else "plain"

    view = dict(environ)
    if _pulumi_logged_in(environ):
        view.setdefault("PULUMI_ACCESS_TOKEN", "(pulumi login)")
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{APP}:")}
    problems = missing(stack, stack_secret, view, program_only=False) + placeholders(raw, stack)
    report = Report(stack, str(path))
    report.findings = [Finding(p.key, p.problem, p.where, p.how) for p in problems]
    return report


def online(report: Report, environ: Mapping[str, str], *, transport: httpx.BaseTransport | None = None) -> None:
    """Add what the providers' APIs say, with the credentials in the environment (each check one GET)."""
    from stacks.config import APP, PLAIN_KEYS, StackConfigError, parse_config

    config = read_stack_config(Path(report.stack_file))
    # The plain settings only: the `secure:` secrets beside them are not the program's settings.
    raw = {k.split(":", 1)[1]: v for k, v in config.items()
           if k.startswith(f"{APP}:") and k.split(":", 1)[1] in PLAIN_KEYS}
    try:
        stack = parse_config(raw, report.stack)
    except StackConfigError as exc:
        report.findings.append(Finding(f"Pulumi.{report.stack}.yaml", str(exc), "the stack file",
                                       f"fix it, then run ops doctor --stack {report.stack} again"))
        return
    if environ.get("CLOUDFLARE_API_TOKEN"):
        _cloudflare(report, stack, environ, transport)
    else:
        report.findings.append(Finding("CLOUDFLARE_API_TOKEN", "not in the environment: the Cloudflare checks "
                                       "(token rights, R2, Pages, existing rulesets and records) were skipped",
                                       "see cloudflare:apiToken", "export CLOUDFLARE_API_TOKEN=...", "note"))
    if environ.get("HCLOUD_TOKEN"):
        _hetzner(report, stack, environ, transport)
    else:
        report.findings.append(Finding("HCLOUD_TOKEN", "not in the environment: the Hetzner SSH key check was "
                                       "skipped", "see hcloud:token", "export HCLOUD_TOKEN=...", "note"))


EDGE = ("autoenroll:edge:Edge", "edge")


def _cloudflare(report: Report, stack: Any, environ: Mapping[str, str], transport: httpx.BaseTransport | None) -> None:
    from ops.adapters.cloud.clients import CloudflareClient

    e, stack_name = stack.edge, report.stack
    from ops.adapters.cloud.clients import base_url_override

    client = CloudflareClient(environ["CLOUDFLARE_API_TOKEN"], transport=transport, max_attempts=2,
                              base_url=base_url_override(CloudflareClient.base_url_variable))
    with client:
        try:
            token = client.get("/user/tokens/verify")
        except ProviderAPIError as exc:
            report.findings.append(Finding("cloudflare:apiToken", f"the token does not verify ({exc.message})",
                                           "Cloudflare > My Profile > API Tokens", "create a new token"))
            return
        if token.get("status") != "active":
            report.findings.append(Finding("cloudflare:apiToken", f"the token is {token.get('status')}, not active",
                                           "Cloudflare > My Profile > API Tokens", "roll or re-enable it"))
        try:
            details = client.get(f"/user/tokens/{token['id']}")
            granted = {g.get("name") for p in details.get("policies", []) if p.get("effect", "allow") == "allow"
                       for g in p.get("permission_groups", [])}
            lacking = [name for name in CLOUDFLARE_PERMISSIONS if name not in granted]
            if lacking:
                report.findings.append(Finding("cloudflare:apiToken", f"the token lacks {', '.join(lacking)}",
                                               "Cloudflare > My Profile > API Tokens > the token > Edit",
                                               "add those permissions (the dashboard calls Write 'Edit')"))
        except ProviderAPIError:
            report.findings.append(Finding("cloudflare:apiToken", "its permissions can't be read with itself "
                                           f"(it needs 'API Tokens Read' for that); check by hand that it has "
                                           f"{', '.join(CLOUDFLARE_PERMISSIONS)}", "Cloudflare > My Profile > API "
                                           "Tokens", "edit the token", "note"))
        try:
            client.get(f"/accounts/{e.account_id}/r2/buckets")
        except ProviderAPIError as exc:
            report.findings.append(Finding("R2", f"R2 is not usable on account {e.account_id} ({exc.message})",
                                           "Cloudflare > R2 > Purchase R2 (activation needs a payment method; the "
                                           "free allowance still applies)", "activate R2 once, by hand"))
        if e.pages is not None:
            project = client.get_or_none(f"/accounts/{e.account_id}/pages/projects/{e.pages.project_name}")
            if project is None:
                report.findings.append(Finding(
                    "Cloudflare Pages", f"no project {e.pages.project_name} yet: the stack creates it from GitHub "
                    f"{e.pages.github_owner}/{e.pages.github_repo}, which needs the Cloudflare Pages GitHub app "
                    f"installed for {e.pages.github_owner}", "github.com/apps/cloudflare-workers-and-pages > "
                    f"Install > {e.pages.github_owner}", "install the app for that owner (the API cannot tell "
                    "whether it is), then run pulumi up", "note"))
        if e.manage_zone:
            rulesets = client.get(f"/zones/{e.zone_id}/rulesets") or []
            for ruleset in rulesets:
                phase = str(ruleset.get("phase"))
                if ruleset.get("kind") == "zone" and phase in RULESET_PHASES:
                    adopt = import_command(stack_name, "cloudflare:index/ruleset:Ruleset", RULESET_PHASES[phase],
                                           f"zones/{e.zone_id}/{ruleset.get('id')}", EDGE)
                    report.findings.append(Finding(
                        f"zone ruleset {ruleset.get('id')}",
                        f"already exists for phase {phase} ({ruleset.get('name')!r}): the stack's ruleset for that "
                        "phase would collide", "the zone's Security/Rules pages, made earlier by hand",
                        f"delete it in the dashboard, or adopt it: {adopt} (docs/first-deploy.md, adopting)"))
        names = {"edge-app": stack.fqdn(e.app_host), "edge-api": stack.fqdn(e.api_host)}
        if e.pages is not None and e.manage_zone:
            names["edge-pages"] = e.pages.domain
        for resource, name in names.items():
            records = client.get(f"/zones/{e.zone_id}/dns_records", params={"name.exact": name})
            for record in records or []:
                if record.get("type") not in ("A", "AAAA", "CNAME"):
                    continue  # the apex's mail TXT records coexist with the stack's CNAME
                adopt = import_command(stack_name, "cloudflare:index/dnsRecord:DnsRecord", resource,
                                       f"{e.zone_id}/{record.get('id')}", EDGE)
                report.findings.append(Finding(
                    f"DNS record {name}", f"already exists ({record.get('type')} {record.get('content')}, id "
                    f"{record.get('id')}): creating the stack's record would fail", "the zone's DNS page",
                    f"delete it, or adopt it: {adopt}"))


def _hetzner(report: Report, stack: Any, environ: Mapping[str, str], transport: httpx.BaseTransport | None) -> None:
    from ops.adapters.cloud.clients import JsonApiClient, base_url_override
    from stacks.config import ssh_fingerprint

    if not stack.compute.owns_ssh_keys:
        return  # the other stack creates the keys; this one looks them up by fingerprint
    client = JsonApiClient(base_url_override("OPS_HCLOUD_API_URL") or HCLOUD_URL, environ["HCLOUD_TOKEN"],
                           transport=transport, max_attempts=2)
    with client:
        for name, key in stack.compute.ssh_keys:
            fingerprint = ssh_fingerprint(key)
            try:
                found = client.request("GET", "/ssh_keys", params={"fingerprint": fingerprint})["ssh_keys"]
            except ProviderAPIError as exc:
                report.findings.append(Finding("hcloud:token", f"Hetzner refused the token ({exc.message})",
                                               "Hetzner Cloud Console > Security > API tokens", "create a new one"))
                return
            for existing in found:
                report.findings.append(Finding(
                    f"compute.ssh_keys.{name}", f"the project already has this key as {existing.get('name')!r} (id "
                    f"{existing.get('id')}): Hetzner refuses a second one (uniqueness_error)",
                    "Hetzner Cloud Console > Security > SSH keys",
                    "delete it in the console, or adopt it: " + import_command(
                        report.stack, "hcloud:index/sshKey:SshKey", f"compute-key-{name}", str(existing.get("id")),
                        ("autoenroll:compute:Compute", "compute"))))
