"""Every secret and variable a stack and its jobs need, in one table, and the checks that use it.

One list feeds three readers, so they cannot drift apart: the program's up-front check (`stacks.config.load`,
which runs in every `pulumi preview`/`up`), `ops doctor` (offline, from the committed stack file and the
environment) and the table in docs/first-deploy.md, "Before the first `pulumi up`" (tests/scripts/test_doctor.py
compares them). Placeholder values of the committed stack files are recognised here too.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

APP = "autoenroll"
# Kinds of prerequisite (labels, not secrets).
STACK_SECRET = "stack secret"  # noqa: S105
ENV_VAR = "environment variable"
GITHUB_SECRET = "GitHub environment secret"  # noqa: S105


@dataclass(frozen=True)
class Prerequisite:
    """One credential. `name` is the stack config key (`autoenroll:redisUrl`) or the variable's name.

    `alternative` is the environment variable that stands in for a stack secret: the providers read
    `HCLOUD_TOKEN`/`CLOUDFLARE_API_TOKEN` when `hcloud:token`/`cloudflare:apiToken` are not set, and
    release.yml puts `REGISTRY_READ_TOKEN` into `autoenroll:registryReadToken` with the action's config-map."""

    name: str
    what: str
    where: str
    kind: str
    stacks: tuple[str, ...]
    jobs: str
    alternative: str = ""
    # Checked by the program before any resource is registered (pulumi preview/up) and by `ops doctor`.
    needed_by_program: bool = True

    def how(self, stack: str) -> str:
        if self.kind == STACK_SECRET:
            key = self.name.removeprefix(f"{APP}:")
            how = f"pulumi config set --secret {key} --stack {stack}  (then commit Pulumi.{stack}.yaml)"
            return how + (f", or export {self.alternative}" if self.alternative else "")
        if self.kind == ENV_VAR:
            return (f"export {self.name}=... by hand; in CI a secret {self.name} in the GitHub environment "
                    f"'{stack}' (Settings > Environments)")
        return f"a secret {self.name} in the GitHub environment '{stack}' (Settings > Environments)"


BOTH = ("staging", "production")
CF_RIGHTS = ("Zone: DNS Edit, Zone Settings Edit, Zone WAF Edit, Cache Rules Edit, SSL and Certificates Edit; "
             "Account: Workers R2 Storage Edit, Cloudflare Pages Edit")

PREREQUISITES: tuple[Prerequisite, ...] = (
    Prerequisite(f"{APP}:redisUrl", "the app's Redis (sessions, rate limits, token blacklist)",
                 "Redis Cloud > Databases > the database > Connect: the public endpoint with the default user's "
                 "password, as redis[s]://default:PASSWORD@HOST:PORT", STACK_SECRET, BOTH, "pulumi up (release.yml)"),
    Prerequisite(f"{APP}:sentryDsn", "where the app and the monitors report errors",
                 "Sentry > Settings > Projects > the project > Client Keys (DSN)", STACK_SECRET, BOTH,
                 "pulumi up (release.yml)"),
    Prerequisite(f"{APP}:r2AccessKeyId", "the app's own R2 key id (uploads bucket)",
                 "Cloudflare > R2 > Manage R2 API Tokens > Create: Object Read & Write on this environment's "
                 "buckets; the Access Key ID", STACK_SECRET, BOTH, "pulumi up (release.yml)"),
    Prerequisite(f"{APP}:r2SecretAccessKey", "the app's own R2 secret key",
                 "the same R2 API token: its Secret Access Key (shown once)", STACK_SECRET, BOTH,
                 "pulumi up (release.yml)"),
    Prerequisite(f"{APP}:betterstackLogsToken", "the hosts' Vector token for shipping logs",
                 "Better Stack > Telemetry > Sources > the environment's source > Source token", STACK_SECRET, BOTH,
                 "pulumi up (release.yml)"),
    Prerequisite(f"{APP}:authSecret", "the app's session-signing key",
                 "generate it: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'", STACK_SECRET, BOTH,
                 "pulumi up (release.yml)"),
    Prerequisite(f"{APP}:registryReadToken", "the hosts' read-only image registry token",
                 "GitHub > Settings > Developer settings > Personal access tokens (classic) of "
                 "compute.registry_username: scope read:packages only", STACK_SECRET, BOTH,
                 "pulumi up (release.yml sets it from REGISTRY_READ_TOKEN)",
                 alternative="REGISTRY_READ_TOKEN"),
    Prerequisite("hcloud:token", "Hetzner Cloud API token (servers, firewall, network, SSH keys)",
                 "Hetzner Cloud Console > the project > Security > API tokens > Generate: Read & Write",
                 STACK_SECRET, BOTH, "pulumi up, ops deploy and ops checklist --open-ssh-from (release.yml)",
                 alternative="HCLOUD_TOKEN"),
    Prerequisite("cloudflare:apiToken", "Cloudflare API token (DNS, zone settings and rules, R2, Pages, Origin CA)",
                 f"Cloudflare > My Profile > API Tokens > Create Custom Token: {CF_RIGHTS}", STACK_SECRET, BOTH,
                 "pulumi up, ops checklist, ops failover (release.yml)", alternative="CLOUDFLARE_API_TOKEN"),
    Prerequisite("NEON_API_KEY", "Neon API key (project, branches, roles); read only from the environment",
                 "Neon Console > Organization settings > API keys > Create (an organization key)", ENV_VAR, BOTH,
                 "pulumi up (release.yml), refresh-staging.yml, refresh-development-weekly.yml"),
    Prerequisite("BETTERSTACK_API_TOKEN", "Better Stack Uptime API token (monitors, heartbeat, status page); "
                 "read only from the environment",
                 "Better Stack > Uptime > Integrations > API tokens (a team token)", ENV_VAR, BOTH,
                 "pulumi up, ops checklist (release.yml)"),
    Prerequisite("STRIPE_API_KEY", "Stripe secret or restricted key (the webhook endpoint); read only from the "
                 "environment", "Stripe Dashboard > Developers > API keys (a restricted key with Webhook Endpoints: "
                 "Write)", ENV_VAR, BOTH, "pulumi up, ops checklist (release.yml)"),
    Prerequisite("PULUMI_ACCESS_TOKEN", "the Pulumi Cloud state backend (or run `pulumi login` by hand)",
                 "app.pulumi.com > the organization > Access Tokens (an organization or team token)", ENV_VAR, BOTH,
                 "every job that runs pulumi: release.yml, infra-preview.yml, the scheduled workflows "
                 "(they read live stack outputs)", needed_by_program=False),
    Prerequisite("R2_ACCESS_KEY_ID", "ops's own R2 key id: backups, the deploy history and locks",
                 "Cloudflare > R2 > Manage R2 API Tokens > Create: Object Read & Write on the backups bucket",
                 ENV_VAR, BOTH, "release.yml (ops deploy), backup-nightly.yml, backup-verify-weekly.yml, the refreshes",
                 needed_by_program=False),
    Prerequisite("R2_SECRET_ACCESS_KEY", "ops's own R2 secret key", "the same R2 API token: Secret Access Key",
                 ENV_VAR, BOTH, "as R2_ACCESS_KEY_ID", needed_by_program=False),
    Prerequisite("DEPLOY_SSH_KEY", "the private SSH key ops deploys with (its public half in compute.ssh_keys)",
                 "ssh-keygen -t ed25519 -f deploy_key -N '' : deploy_key (private) here, deploy_key.pub in "
                 "compute.ssh_keys", GITHUB_SECRET, BOTH, "release.yml", needed_by_program=False),
    Prerequisite("BACKUP_AGE_RECIPIENT", "the age public key backups are encrypted to (a variable, not a secret)",
                 "age-keygen -o backup-identity.txt: its 'public key: age1...' line", GITHUB_SECRET, BOTH,
                 "release.yml, backup-nightly.yml (an environment variable: Settings > Environments > Variables)",
                 needed_by_program=False),
    Prerequisite("BACKUP_AGE_IDENTITY", "the age private key that decrypts backups (kept offline too)",
                 "the backup-identity.txt age-keygen wrote", GITHUB_SECRET, BOTH,
                 "release.yml, backup-verify-weekly.yml",
                 needed_by_program=False),
    Prerequisite("MASKING_KEY", "the key personal data is masked with when a branch is refreshed",
                 "generate it: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'", GITHUB_SECRET,
                 ("staging",), "refresh-staging.yml, refresh-development-weekly.yml", needed_by_program=False),
)


@dataclass(frozen=True)
class Problem:
    """One thing missing or wrong: the key or path, what is wrong, where to get it, how to set it."""

    key: str
    problem: str
    where: str
    how: str

    def line(self) -> str:
        return f"{self.key}: {self.problem}; get it from {self.where}; set it: {self.how}"


def missing(stack: str, stack_secret: Callable[[str], str | None], environ: Mapping[str, str],
            *, program_only: bool = True) -> list[Problem]:
    """Every prerequisite of `stack` that is not set, all at once (never only the first).

    `stack_secret(name)` answers how a stack config key is set: None (absent), "secure" (encrypted)
    or "plain" (written in clear, which is a problem of its own)."""
    problems = []
    for item in PREREQUISITES:
        if stack not in item.stacks or (program_only and not item.needed_by_program) or item.kind == GITHUB_SECRET:
            continue
        if item.kind == STACK_SECRET:
            state = stack_secret(item.name)
            if state == "plain":
                problems.append(Problem(item.name, "written in clear text in the stack file (must be a secret)",
                                        item.where, item.how(stack)))
            elif state is None and not (item.alternative and environ.get(item.alternative)):
                also = f" (nor {item.alternative} in the environment)" if item.alternative else ""
                problems.append(Problem(item.name, f"missing stack secret{also}", item.where, item.how(stack)))
        elif not environ.get(item.name):
            problems.append(Problem(item.name, "missing environment variable", item.where, item.how(stack)))
    return problems


# --------------------------------------------------------------------------- placeholders

DOCUMENTATION_NETS = tuple(ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
                                                             "2001:db8::/32"))
_FAKE_ID = re.compile(r"^(?:(.)\1{31}|0123456789abcdef0123456789abcdef|fedcba9876543210fedcba9876543210)$")


def placeholders(raw: Mapping[str, Any], stack: str) -> list[Problem]:
    """Every placeholder value in a stack's `autoenroll:*` config (namespace stripped), each named by its path.

    Defensive about shape: parse_config reports wrong types; this only recognises the committed
    examples (documentation addresses, zero or sequential ids, the words placeholder/ReplaceMe)."""
    found: list[Problem] = []
    file = f"Pulumi.{stack}.yaml"

    def section(name: str) -> Mapping[str, Any]:
        value = raw.get(name)
        return value if isinstance(value, Mapping) else {}

    compute, database, edge, monitoring = (section(n) for n in ("compute", "database", "edge", "monitoring"))
    cidrs = compute.get("admin_cidrs")
    for index, value in enumerate(cidrs if isinstance(cidrs, list) else []):
        try:
            net = ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            continue
        if any(net.version == doc.version and net.subnet_of(doc) for doc in DOCUMENTATION_NETS):  # type: ignore[arg-type]
            found.append(Problem(f"compute.admin_cidrs[{index}]",
                                 f"{value} is a documentation (TEST-NET) range: nobody can reach SSH from it",
                                 "your office or VPN egress address (curl -4 https://api.ipify.org), as a /32 or the "
                                 "VPN's range", f"edit {file}"))
    keys = compute.get("ssh_keys")
    for name, value in sorted((keys if isinstance(keys, Mapping) else {}).items()):
        if re.search(r"placeholder|replaceme", str(value), re.IGNORECASE):
            found.append(Problem(f"compute.ssh_keys.{name}", "a placeholder key: nobody holds its private half",
                                 "the on-call engineer's public key (~/.ssh/id_ed25519.pub; ssh-keygen -t ed25519)",
                                 f"edit {file}"))
    org = database.get("org_id")
    if isinstance(org, str) and re.search(r"0{8}|placeholder", org):
        found.append(Problem("database.org_id", f"{org} is a placeholder organization",
                             "Neon Console > Organization settings > General: the organization id (org-...)",
                             f"edit {file}"))
    for key, where in (("account_id", "Cloudflare dashboard > the account's home > Account ID (right column)"),
                       ("zone_id", "Cloudflare dashboard > the domain > Overview > Zone ID (right column)")):
        value = edge.get(key)
        if isinstance(value, str) and _FAKE_ID.match(value):
            found.append(Problem(f"edge.{key}", f"{value} is a placeholder id", where, f"edit {file}"))
    dkim = edge.get("mailjet_dkim_value")
    if isinstance(dkim, str) and "placeholder" in dkim.lower():
        found.append(Problem("edge.mailjet_dkim_value", "a placeholder DKIM key: mail would fail DKIM",
                             "Mailjet > Account settings > Domains and senders > the domain > DKIM/SPF: the TXT value",
                             f"edit {file}"))
    host = monitoring.get("logs_ingest_host")
    if isinstance(host, str) and re.match(r"^s0{6,}\d?\.", host):
        found.append(Problem("monitoring.logs_ingest_host", f"{host} is a placeholder ingesting host",
                             "Better Stack > Telemetry > Sources > the environment's source > Ingesting host",
                             f"edit {file}"))
    return found


# --------------------------------------------------------------------------- docs/first-deploy.md's table

START = "<!-- prerequisites:start (generated: python -m stacks.prerequisites docs/first-deploy.md) -->"
END = "<!-- prerequisites:end -->"


def markdown() -> str:
    """docs/first-deploy.md's table of every secret and variable, from PREREQUISITES (so it cannot drift)."""
    lines = ["| name | what it is | where to get it | kind (how it is set) | stacks | needed by |",
             "|---|---|---|---|---|---|"]
    for p in PREREQUISITES:
        kind = {STACK_SECRET: f"stack secret: `pulumi config set --secret {p.name.removeprefix(APP + ':')} "
                              "--stack S`, committed encrypted",
                ENV_VAR: "environment variable (by hand: `export`; CI: a secret of the GitHub environment)",
                GITHUB_SECRET: "GitHub environment secret"}[p.kind]
        if p.alternative:
            kind += f"; or the environment variable `{p.alternative}`"
        if p.name == "BACKUP_AGE_RECIPIENT":
            kind = "GitHub environment variable (not a secret)"
        cells = [f"`{p.name}`", p.what, p.where.replace("|", "\\|"), kind, ", ".join(p.stacks), p.jobs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def with_readme_section(readme: str) -> str:
    before, _, rest = readme.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n{markdown()}\n{END}{after}"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    path = Path(sys.argv[1])
    path.write_text(with_readme_section(path.read_text()))
