"""What a stack costs a month, priced from the offline plan and one dated price table.

Every line names the resource (or service) it prices and the price's source, so the
estimate is reviewable; the plan snapshot includes it, so a change that raises the cost
shows up as a diff.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from stacks.compute import LB_HEALTH_INTERVAL_S
from stacks.data import load
from stacks.plans import phases
from stacks.policies import LOAD_BALANCER, SERVER


@dataclass(frozen=True)
class CostLine:
    item: str
    detail: str
    eur: float
    source: str


@dataclass(frozen=True)
class Finding:
    """A usage figure over a free plan's allowance: not a price, but the stack stops working there."""

    what: str
    usage: float
    allowance: float
    unit: str
    consequence: str
    source: str

    @property
    def message(self) -> str:
        return (f"{self.what}: ~{self.usage:g} {self.unit} a month, over the plan's {self.allowance:g}; "
                f"{self.consequence} (source: {self.source})")


@dataclass(frozen=True)
class Estimate:
    stack: str
    phase: str
    lines: tuple[CostLine, ...]
    budget: float | None
    findings: tuple[Finding, ...] = ()
    # What the reader should know but this stack's figures can't settle (another stack's usage): no exit code.
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return round(sum(line.eur for line in self.lines), 2)

    @property
    def within_budget(self) -> bool:
        return self.budget is None or self.total <= self.budget

    @property
    def ok(self) -> bool:
        """Within budget and within every free allowance: what `ops cost` exits 0 on."""
        return self.within_budget and not self.findings

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "phase": self.phase, "total_eur_month": self.total, "budget_eur": self.budget,
                "within_budget": self.within_budget, "ok": self.ok, "prices_checked": load("prices")["checked"],
                "findings": [{**asdict(f), "message": f.message} for f in self.findings],
                "notes": list(self.notes),
                "lines": [{"item": c.item, "detail": c.detail, "eur": round(c.eur, 2), "source": c.source}
                          for c in self.lines]}


class PriceError(ValueError):
    """The plan uses something the price table doesn't price."""


def estimate(stack: str, config: Any, resources: list[Any],
             read_stack: Callable[[str], Any] | None = None) -> Estimate:
    """Price the planned resources (`PlannedResource`s) for `config.phase`. `read_stack` gives another
    stack's validated config (stacks.plan passes its stack-file reader): the Neon project's other computes."""
    prices = load("prices")
    phase = phases()[config.phase]  # the same table the fits-the-plan policy reads
    hz = prices["hetzner"]
    lines: list[CostLine] = []
    for r in sorted(resources, key=lambda r: r.name):
        if r.type == SERVER:
            server_type = r.props.get("serverType") or r.props.get("server_type")
            if server_type not in hz["server_types"]:
                raise PriceError(f"{r.name}: server type {server_type!r} has no price in stacks/data/prices.json")
            price = float(hz["server_types"][server_type])
            lines.append(CostLine(r.name, f"server {server_type}", price, hz["source"]))
            lines.append(CostLine(r.name, "primary IPv4", float(hz["primary_ipv4"]), hz["source"]))
            if r.props.get("backups"):
                lines.append(CostLine(r.name, "Hetzner backups (20% of the server)",
                                      price * float(hz["backups_fraction_of_server"]), hz["source"]))
        elif r.type == LOAD_BALANCER:
            lb_type = r.props.get("loadBalancerType") or r.props.get("load_balancer_type")
            if lb_type not in hz["load_balancer_types"]:
                raise PriceError(f"{r.name}: load balancer type {lb_type!r} has no price")
            lines.append(CostLine(r.name, f"load balancer {lb_type}", float(hz["load_balancer_types"][lb_type]),
                                  hz["source"]))
    # Account-wide plans (Neon, Cloudflare, Sentry, ...) are paid once: by the stack that owns
    # the shared thing (production owns the Neon project and the zone). Staging adds only usage.
    owner = config.database.owns_project
    neon_lines, findings, notes = _neon(config, phase["neon"], prices["neon"],
                                        has_load_balancer=any(r.type == LOAD_BALANCER for r in resources),
                                        read_stack=read_stack)
    lines.extend(neon_lines)
    r2 = prices["r2"]
    r2_eur = (max(0.0, config.cost.r2_storage_gb - r2["free_storage_gb"]) * r2["storage_gb"]
              + max(0.0, config.cost.r2_class_a_millions - r2["free_class_a_millions"]) * r2["class_a_million"]
              + max(0.0, config.cost.r2_class_b_millions - r2["free_class_b_millions"]) * r2["class_b_million"])
    lines.append(CostLine("r2", f"{config.cost.r2_storage_gb:g} GB, {config.cost.r2_class_a_millions:g}M class A, "
                                f"{config.cost.r2_class_b_millions:g}M class B", r2_eur, r2["source"]))
    flat = prices["flat"]
    # The stack's own Redis plan (cache.plan, the phase's by default): staging may stay on the free one.
    lines.append(CostLine("redis_cloud", f"{config.cache.plan} tier (one database per environment)",
                          float(flat["redis_cloud"][config.cache.plan]), flat["source"]))
    for service in ("cloudflare", "mailjet", "betterstack", "sentry"):
        tier = phase[service]
        eur = float(flat[service][tier]) if owner else 0.0
        lines.append(CostLine(service, f"{tier} tier" + ("" if owner else " (paid by production's account)"), eur,
                              flat["source"]))
    return Estimate(stack, config.phase, tuple(lines), phase["budget"], tuple(findings), tuple(notes))


# A load balancer asks every host's `/ready` every LB_HEALTH_INTERVAL_S (stacks/compute.py), and `/ready`
# reads alembic_version on the primary (app/autoenroll/readiness.py): Neon never sees the 5 idle minutes it
# suspends after, so the read-write compute runs all month, at least at its minimum size.
HOURS_PER_MONTH = 730.0


def _neon(config: Any, plan_name: str, neon: dict[str, Any], *, has_load_balancer: bool,
          read_stack: Callable[[str], Any] | None) -> tuple[list[CostLine], list[Finding], list[str]]:
    """Main's and the replica's compute priced together against the plan (Free's CU-hours are per
    project, shared by every compute in it), the root branch's storage, and what is over Free's allowance."""
    plan = neon["plans"][plan_name]
    owner = config.database.owns_project
    source = neon["source"]
    main_hours = config.cost.neon_compute_hours
    awake = ""
    if has_load_balancer:
        always_on = HOURS_PER_MONTH * config.database.autoscaling_min_cu
        if always_on > main_hours:
            main_hours = always_on
            awake = (f" (always on: the load balancer asks /ready, which queries it, every "
                     f"{LB_HEALTH_INTERVAL_S} s)")
    replica_hours = config.replica_cu_hours
    hours = main_hours + replica_hours
    # A stack that doesn't own the project (staging's branch) uses production's project: its hours
    # are billed (or count toward Free's allowance) there, and production's estimate pays the plan.
    included = float(plan["included_cu_hours"]) if owner else 0.0
    cu_hour = plan["cu_hour"]
    billed = max(0.0, hours - included)
    what = f"{plan_name} plan, main compute" if owner else "branches' compute on production's project"
    lines = [CostLine("neon", f"{what} ~{main_hours:g} CU-hours{awake}",
                      float(plan["base"]) if owner else 0.0, source)]
    if replica_hours:
        lines.append(CostLine("neon", f"read replica compute ~{replica_hours:g} CU-hours", 0.0, source))
    if cu_hour is not None:
        # Priced as one figure: an allowance (if any) covers both computes before either is billed.
        lines.append(CostLine("neon", f"compute {hours:g} CU-hours - {included:g} included = {billed:g} "
                                      f"x {cu_hour:g}", billed * float(cu_hour), source))
    storage = config.cost.neon_storage_gb
    if owner:  # the root branch's data; staging's child branch is billed its changes, far smaller
        included_gb = float(plan["included_storage_gb"])
        per_gb = plan["storage_gb_month"]
        lines.append(CostLine("neon", f"storage ~{storage:g} GB-month ({included_gb:g} included)",
                              0.0 if per_gb is None else max(0.0, storage - included_gb) * float(per_gb), source))
    findings: list[Finding] = []
    notes: list[str] = []
    if cu_hour is None:  # a plan with an allowance and no price: over it, Neon stops, not bills
        allowance = float(plan["included_cu_hours"])
        computes = f"main {main_hours:g}{awake}" + (f" + read replica {replica_hours:g}" if replica_hours else "")
        where = "" if owner else " (on production's project, beside production's own computes)"
        if hours > allowance:
            findings.append(Finding(
                f"Neon {plan_name} plan compute{where} ({computes})", hours, allowance,
                "CU-hours (per project, all computes)",
                f"Neon suspends the project's compute when it is spent (\"{plan['over_allowance']}\")",
                source))
        if owner and storage > float(plan["included_storage_gb"]):
            findings.append(Finding(f"Neon {plan_name} plan storage", storage, float(plan["included_storage_gb"]),
                                    "GB (per project)", "move to a paid plan (Launch bills it per GB-month)",
                                    source))
        if read_stack is not None:
            notes.extend(_shared_allowance(read_stack, config.environment, owner, plan_name, hours, allowance))
    return lines, findings, notes


def _shared_allowance(read_stack: Callable[[str], Any], environment: str, owner: bool, plan_name: str,
                      own_hours: float, allowance: float) -> list[str]:
    """The other stacks' computes on the same Neon project, read from their committed stack files.

    Free's CU-hours are per project and staging's branches live in production's project, so the two
    estimates only add up there. A note, not a finding: the other stack's figures are its own to change,
    and each stack's `ops cost` judges its own configuration. Their configured figures only: a load
    balancer's always-on adjustment shows in their own estimate."""
    from stacks.config import ENVIRONMENTS, StackConfigError

    notes: list[str] = []
    for other in ENVIRONMENTS:
        if other == environment:
            continue
        try:
            theirs = read_stack(other)
        except StackConfigError as exc:
            notes.append(f"Neon {plan_name} plan: {other}'s stack file could not be read to add its compute "
                         f"to this project's {allowance:g} CU-hours: {str(exc).splitlines()[0]}")
            continue
        if theirs.database.owns_project == owner:
            continue  # not on this project (or the same role twice)
        their_hours = theirs.cost.neon_compute_hours + theirs.replica_cu_hours
        what = f"{other}'s branches" if owner else f"{other}'s main and read replica"
        total = own_hours + their_hours
        verdict = "over" if total > allowance else "within"
        notes.append(f"Neon {plan_name} plan: {what} (~{their_hours:g} CU-hours, Pulumi.{other}.yaml) share the "
                     f"project's {allowance:g} CU-hours: with them ~{total:g}, {verdict} the allowance")
    return notes
