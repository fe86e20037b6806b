"""A picture of a stack, as SVG, from the offline plan: edge -> compute -> data, and monitoring.

Hand-written SVG (no Graphviz), laid out in four columns, so the output is byte-for-byte
stable and the committed pictures under docs/ can be checked for staleness by a test.
"""

from __future__ import annotations

from html import escape
from typing import Any

from stacks.policies import LOAD_BALANCER, R2_BUCKET, SERVER

DNS = "cloudflare:index/dnsRecord:DnsRecord"
COLUMNS = ("Cloudflare edge", "Hetzner compute", "Data (EU)", "Monitoring")
BOX_W, BOX_H, GAP, COL_W, TOP = 230, 46, 14, 270, 70
COLOURS = {"Cloudflare edge": "#fde7cf", "Hetzner compute": "#fbd3d3", "Data (EU)": "#d6e8fb",
           "Monitoring": "#dff3dc"}


def _boxes(plan: Any) -> dict[str, list[tuple[str, str, str]]]:
    """column -> [(id, title, subtitle)]"""
    config = plan.config
    out: dict[str, list[tuple[str, str, str]]] = {c: [] for c in COLUMNS}
    for r in sorted(plan.resources, key=lambda r: r.name):
        p = r.props
        if r.type == DNS and p.get("type") in ("A", "CNAME"):
            out["Cloudflare edge"].append((r.name, str(p.get("name")), f"{p.get('type')}, proxied={p.get('proxied')}"))
        elif r.type == LOAD_BALANCER:
            detail = f"{p.get('loadBalancerType')} {p.get('location')}"
            out["Hetzner compute"].insert(0, (r.name, "load balancer", detail))
        elif r.type == SERVER:
            role = (p.get("labels") or {}).get("role", "")
            detail = f"{p.get('serverType')} {p.get('location')} {role}"
            out["Hetzner compute"].append((r.name, str(p.get("name")), detail))
        elif r.type == R2_BUCKET:
            out["Data (EU)"].append((r.name, f"R2 {p.get('name')}", f"jurisdiction {p.get('jurisdiction')}"))
        elif r.type == "pulumi-python:dynamic:Resource" and "min_cu" in p:
            out["Data (EU)"].insert(0, (r.name, f"Neon branch {p.get('name')}",
                                        f"{p.get('min_cu')}-{p.get('max_cu')} CU"))
        elif r.type == "pulumi-python:dynamic:Resource" and p.get("kind") in ("monitors", "heartbeats", "status-pages"):
            attrs = p.get("attributes") or {}
            title = {"monitors": "monitor", "heartbeats": "heartbeat", "status-pages": "status page"}[p["kind"]]
            detail = attrs.get("url") or attrs.get("name") or attrs.get("custom_domain") or ""
            out["Monitoring"].append((r.name, title, str(detail)[:34]))
    out["Data (EU)"].append(("redis", "Redis Cloud", f"{config.cache.region} (secret URL)"))
    return out


def render_svg(plan: Any) -> str:
    columns = _boxes(plan)
    rows = max(len(v) for v in columns.values())
    width = COL_W * len(COLUMNS) + 20
    height = TOP + rows * (BOX_H + GAP) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, sans-serif">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="20" y="28" font-size="18" font-weight="bold">autoenroll {escape(plan.stack)}</text>']
    centres: dict[str, list[tuple[float, float]]] = {}
    kinds: dict[str, list[str]] = {}
    for index, column in enumerate(COLUMNS):
        x = 20 + index * COL_W
        parts.append(f'<text x="{x}" y="55" font-size="13" font-weight="bold">{escape(column)}</text>')
        for row, (_id, title, subtitle) in enumerate(columns[column]):
            y = TOP + row * (BOX_H + GAP)
            parts.append(f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" '
                         f'fill="{COLOURS[column]}" stroke="#555"/>')
            parts.append(f'<text x="{x + 8}" y="{y + 19}" font-size="12">{escape(title[:36])}</text>')
            parts.append(f'<text x="{x + 8}" y="{y + 36}" font-size="10" fill="#444">{escape(subtitle[:40])}</text>')
            centres.setdefault(column, []).append((x, y + BOX_H / 2))
            kinds.setdefault(column, []).append(subtitle.split(",")[0] if column == "Cloudflare edge" else title)
    # Links: A records to the first compute box (the LB or the primary), the status CNAME to
    # the status page, every compute box to every data box. Thin and grey, drawn first.
    links = []
    compute = centres.get("Hetzner compute", [])
    status = [c for c, k in zip(centres.get("Monitoring", []), kinds.get("Monitoring", []), strict=True)
              if k == "status page"]
    for (ex, ey), kind in zip(centres.get("Cloudflare edge", []), kinds.get("Cloudflare edge", []), strict=True):
        if kind == "A" and compute:
            links.append((ex + BOX_W, ey, compute[0][0], compute[0][1]))
        elif kind == "CNAME" and status:
            links.append((ex + BOX_W, ey, status[0][0], status[0][1]))
    if compute:
        for cx, cy in compute:
            for dx, dy in centres.get("Data (EU)", []):
                links.append((cx + BOX_W, cy, dx, dy))
    for x1, y1, x2, y2 in links:
        parts.insert(3, f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#999" '
                        f'stroke-width="1"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
