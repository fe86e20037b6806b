"""The seed's procurement answers, derived from the program itself, each with its evidence.

An answer is only as good as the resource and property it rests on: data location from
every data store's jurisdiction or region, encryption in transit from the zone's TLS
settings, backups from Neon's history window and the backup retention, GDPR from every
resource being in the EU. Facts no resource can show (encryption at rest, SOC 2) come from
a dated data file and say so. If any resource is outside the EU, the EU answers are
refused, naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stacks.config import EU_NEON_REGIONS, GERMAN_LOCATIONS
from stacks.data import load
from stacks.policies import LOAD_BALANCER, R2_BUCKET, SERVER, ZONE_SETTING, _get, _is_neon_project

REGION_NAMES = {"aws-eu-central-1": "Frankfurt, Germany", "fsn1": "Falkenstein, Germany",
                "nbg1": "Nuremberg, Germany", "eu": "EU jurisdiction"}
EU_CACHE_REGIONS = ("aws-eu-central-1", "gcp-europe-west3", "aws-eu-west-1")


@dataclass
class Answer:
    question: str
    answer: str
    evidence: list[str]


@dataclass
class Procurement:
    stack: str
    answers: list[Answer]
    outside_eu: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.outside_eu

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "ok": self.ok, "outside_eu": self.outside_eu,
                "facts_checked": load("provider_facts")["checked"],
                "answers": [{"question": a.question, "answer": a.answer, "evidence": a.evidence}
                            for a in self.answers]}

    def to_markdown(self) -> str:
        lines = [f"# Procurement answers: {self.stack}", ""]
        if self.outside_eu:
            lines += ["**Refused: resources outside the EU:** " + "; ".join(self.outside_eu), ""]
        lines += ["| question | answer | evidence |", "|---|---|---|"]
        for a in self.answers:
            lines.append(f"| {a.question} | {a.answer} | {'<br>'.join(a.evidence)} |")
        lines += ["", f"Provider facts as of {load('provider_facts')['checked']} (stacks/data/provider_facts.json)."]
        return "\n".join(lines) + "\n"


def answers(plan: Any) -> Procurement:
    config, resources = plan.config, plan.resources
    facts = load("provider_facts")["providers"]
    data_evidence: list[str] = []
    outside: list[str] = []
    for r in resources:
        if r.type == R2_BUCKET:
            jurisdiction = r.props.get("jurisdiction")
            data_evidence.append(f"R2 bucket {r.props.get('name')}: jurisdiction={jurisdiction}")
            if jurisdiction != "eu":
                outside.append(f"R2 bucket {r.props.get('name')} (jurisdiction={jurisdiction})")
        elif _is_neon_project(r.view()):
            region = r.props.get("region_id")
            data_evidence.append(f"Neon project {r.props.get('name')}: region_id={region}")
            if region not in EU_NEON_REGIONS:
                outside.append(f"Neon project {r.props.get('name')} (region_id={region})")
    if not config.database.owns_project:
        data_evidence.append(f"Neon branches of production's project (region {config.database.region_id})")
    data_evidence.append(f"Redis Cloud: cache.region={config.cache.region} (config; no Pulumi resource)")
    if config.cache.region not in EU_CACHE_REGIONS:
        outside.append(f"Redis Cloud database (cache.region={config.cache.region})")
    compute_evidence = []
    for r in resources:
        if r.type in (SERVER, LOAD_BALANCER):
            location = r.props.get("location")
            compute_evidence.append(f"{r.name}: location={location}")
            if location not in GERMAN_LOCATIONS:
                outside.append(f"{r.name} (location={location})")

    settings = {_get(r.props, "setting_id"): r.props.get("value") for r in resources if r.type == ZONE_SETTING}
    if settings:
        hsts = settings.get("security_header", {}).get("strictTransportSecurity", {})
        transit = (f"TLS {settings.get('min_tls_version')}+ at Cloudflare (TLS 1.3 {settings.get('tls_1_3')}), "
                   f"Full (strict) to the origin, HTTPS only, HSTS max-age {int(hsts.get('maxAge', 0))} s")
        transit_evidence = [f"ZoneSetting {k}={v}" for k, v in sorted(settings.items()) if k != "security_header"]
    else:
        transit = "zone TLS settings are managed by the production stack"
        transit_evidence = ["edge.manage_zone=false in this stack"]
    transit_evidence.append("app: DATABASE_URL requires sslmode=require for non-local databases")

    used = ["Hetzner", "Neon", "Cloudflare", "Redis Cloud", "BetterStack", "Sentry", "Mailjet"]
    at_rest = "; ".join(f"{p}: {facts[p]['at_rest']}" for p in used)
    soc2 = "; ".join(f"{p}: {facts[p]['certification']}" for p in used)
    seconds = config.database.history_retention_seconds
    # Neon Free keeps hours, not days: say which.
    retention = f"{seconds // 86400} days" if seconds >= 86400 else f"{seconds // 3600} hours"

    eu_refused = "refused: not every resource is in the EU (see outside_eu)"
    result = [
        Answer("Where is data stored?",
               eu_refused if outside else "EU only: Neon in Frankfurt (aws-eu-central-1), R2 in the EU "
               "jurisdiction, Redis Cloud in Frankfurt", data_evidence),
        Answer("Who hosts compute?",
               "Hetzner Online GmbH (German-headquartered), data centres "
               + ", ".join(sorted({REGION_NAMES.get(r.props.get('location'), str(r.props.get('location')))
                                   for r in resources if r.type == SERVER})),
               compute_evidence),
        Answer("Encrypted in transit?", transit, transit_evidence),
        Answer("Encrypted at rest?", at_rest, [f"{p}: {facts[p]['source']}" for p in used]),
        Answer("Backup policy?",
               f"Neon point-in-time restore over {retention}; nightly encrypted logical backups, "
               f"30 dailies + 12 monthlies kept (bucket lifecycle {config.storage.backup_retention_days} days)",
               [f"database.history_retention_seconds={config.database.history_retention_seconds}",
                f"storage.backup_retention_days={config.storage.backup_retention_days}",
                "ops backup prune defaults: --daily 30 --monthly 12"]),
        Answer("GDPR: all infrastructure in the EU?",
               eu_refused if outside else "Yes: every server, data store and cache is in the EU (Germany)",
               data_evidence + compute_evidence),
        Answer("SOC 2?", soc2, [f"{p}: {facts[p]['source']}" for p in used]),
    ]
    return Procurement(plan.stack, result, outside)
