"""What a stack costs a month, priced from the offline plan and one dated price table.

Every line names the resource (or service) it prices and the price's source, so the
estimate is reviewable; the plan snapshot includes it, so a change that raises the cost
shows up as a diff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
class Estimate:
    stack: str
    phase: str
    lines: tuple[CostLine, ...]
    budget: float | None

    @property
    def total(self) -> float:
        return round(sum(line.eur for line in self.lines), 2)

    @property
    def within_budget(self) -> bool:
        return self.budget is None or self.total <= self.budget

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "phase": self.phase, "total_eur_month": self.total, "budget_eur": self.budget,
                "within_budget": self.within_budget, "prices_checked": load("prices")["checked"],
                "lines": [{"item": c.item, "detail": c.detail, "eur": round(c.eur, 2), "source": c.source}
                          for c in self.lines]}


class PriceError(ValueError):
    """The plan uses something the price table doesn't price."""


def estimate(stack: str, config: Any, resources: list[Any]) -> Estimate:
    """Price the planned resources (`PlannedResource`s) for `config.phase`."""
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
    neon = prices["neon"]
    plan = neon["plans"][phase["neon"]]
    included = plan["included_cu_hours"] if owner else 0.0
    extra_hours = max(0.0, config.cost.neon_compute_hours - included)
    neon_eur = (plan["base"] if owner else 0.0) + (extra_hours * plan["cu_hour"] if plan["cu_hour"] else 0.0)
    what = f"{phase['neon']} plan" if owner else "branch compute on production's project"
    lines.append(CostLine("neon", f"{what}, ~{config.cost.neon_compute_hours:g} CU-hours", neon_eur,
                          neon["source"]))
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
    return Estimate(stack, config.phase, tuple(lines), phase["budget"])
