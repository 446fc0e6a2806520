"""CAPACITY.md and its chart: a plan in words for the people who approve and audit it. Pure text output.

The chart is SVG written as text (no plotting library): two panels over the same users axis, the
concentrators the model asks for, and the headroom this farm keeps as the number of users changes.
Every number is formatted with a fixed precision so regenerating a plan gives the same bytes.

Imports svpn.planning's numbers, defaults, model and sizing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from html import escape

from svpn.farm.buckets import buckets_per_node
from svpn.planning.defaults import LIMIT_KEYS, PROFILES
from svpn.planning.model import Plan, PlanInput
from svpn.planning.numbers import fmt, frac
from svpn.planning.sizing import MEMORY_SHARE_FOR_CHARON, size_farm

CHART_SAMPLES = 240
HEADROOM_AXIS_MAX = 300  # percent; the curve is clipped here (it runs to infinity as users go to 0)
HEADROOM_AXIS_MIN = -50


# --------------------------------------------------------------------------- figures the text and chart share


def survivor_buckets(plan: Plan) -> int:
    """The most buckets one survivor owns with the plan's failures, from the LB's own bucket table
    (:func:`svpn.farm.buckets.buckets_per_node`) for every choice of failed nodes (the balance cap makes
    it ceil(buckets / survivors); beyond 500 choices that bound is used)."""
    names = [node.name for node in plan.concentrators]
    failed = plan.pools.failed
    survivors = len(names) - failed
    if math.comb(len(names), failed) > 500:
        return math.ceil(plan.buckets / survivors)
    return max(
        max(buckets_per_node([n for n in names if n not in down], plan.buckets).values())
        for down in itertools.combinations(names, failed)
    )


def farm_capacity(plan: Plan) -> int:
    """Concurrent users this farm carries with its planned failures, keeping no headroom.

    Source-address hashing spreads the users by bucket, so the survivor owning the most buckets reaches a
    limit first: the farm carries per-node limit x buckets / that survivor's buckets (not survivors x the
    limit), and no more than its smallest pool admits on that share.
    """
    per_node = min(result.users_per_node for result in plan.sizing.limits)
    share = survivor_buckets(plan)
    by_limits = math.floor(per_node * plan.buckets / share)
    smallest_pool = min(node.pool_addresses for node in plan.concentrators)
    by_pools = smallest_pool * plan.buckets // share
    return min(by_limits, by_pools)


def headroom_percent(plan: Plan, users: int, capacity: int | None = None) -> float:
    """The farm's headroom at *users*; *capacity*: :func:`farm_capacity`, when the caller has it (a chart
    asks at every sample, and the capacity does not change)."""
    concurrent = math.ceil(users * frac(plan.input.concurrency_percent) / 100)
    return ((farm_capacity(plan) if capacity is None else capacity) / max(concurrent, 1) - 1) * 100


def nodes_needed(inp: PlanInput, users: int) -> int:
    """Concentrators the model asks for at *users* (same profile, node size and redundancy)."""
    return size_farm(replace(inp, users=max(1, users))).node_count


def nice_ceiling(value: float) -> float:
    """The next of 1, 2, 2.5, 5 x 10^k at or above *value* (axis ends and tick steps)."""
    if value <= 0:
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value - 1e-9:
            return candidate
    return 10 ** (exponent + 1)


# --------------------------------------------------------------------------- SVG


@dataclass(frozen=True)
class _Panel:
    top: float
    height: float
    y_min: float
    y_max: float

    def y(self, value: float) -> float:
        value = min(max(value, self.y_min), self.y_max)
        return self.top + self.height * (self.y_max - value) / (self.y_max - self.y_min)


WIDTH, HEIGHT = 760, 560
LEFT, RIGHT = 72, 24
PLOT_WIDTH = WIDTH - LEFT - RIGHT


def _n(value: float) -> str:
    return f"{value:.1f}"


def _x(users: float, x_max: float) -> float:
    return LEFT + PLOT_WIDTH * users / x_max


def _ticks(low: float, high: float, most: int = 6) -> list[float]:
    step = nice_ceiling((high - low) / most)
    first = math.ceil(low / step) * step
    count = math.floor((high - first) / step + 1e-9) + 1
    return [first + i * step for i in range(count)]


def _label(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _axes(panel: _Panel, x_max: float, title: str, y_unit: str) -> list[str]:
    bottom = panel.top + panel.height
    out = [
        f'<text x="{LEFT}" y="{_n(panel.top - 10)}" class="title">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="{_n(panel.top)}" width="{PLOT_WIDTH}" height="{_n(panel.height)}" '
        'class="frame"/>',
    ]
    for tick in _ticks(panel.y_min, panel.y_max):
        y = panel.y(tick)
        out.append(f'<line x1="{LEFT}" y1="{_n(y)}" x2="{LEFT + PLOT_WIDTH}" y2="{_n(y)}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{_n(y + 4)}" class="ylabel">{_label(tick)}{y_unit}</text>')
    for tick in _ticks(0, x_max):
        x = _x(tick, x_max)
        out.append(f'<line x1="{_n(x)}" y1="{_n(bottom)}" x2="{_n(x)}" y2="{_n(bottom + 4)}" class="axis"/>')
        out.append(f'<text x="{_n(x)}" y="{_n(bottom + 18)}" class="xlabel">{_label(tick)}</text>')
    return out


def _polyline(points: list[tuple[float, float]], css: str) -> str:
    text = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
    return f'<polyline points="{text}" class="{css}"/>'


def render_svg(plan: Plan) -> str:
    """Users vs concentrators needed (top) and vs this farm's headroom (bottom)."""
    inp = plan.input
    x_max = nice_ceiling(2 * inp.users)
    samples = [round(x_max * i / CHART_SAMPLES) for i in range(CHART_SAMPLES + 1)]
    needed = [nodes_needed(inp, users) for users in samples]
    nodes_top = nice_ceiling(max(max(needed), plan.node_count) * 1.15)
    top = _Panel(56, 190, 0, nodes_top)
    bottom = _Panel(330, 170, HEADROOM_AXIS_MIN, HEADROOM_AXIS_MAX)

    steps: list[tuple[float, float]] = []
    for users, count in zip(samples, needed, strict=True):
        x = _x(users, x_max)
        if steps:
            steps.append((x, steps[-1][1]))
        steps.append((x, top.y(count)))
    capacity = farm_capacity(plan)
    headroom = [
        (_x(users, x_max), bottom.y(headroom_percent(plan, max(users, 1), capacity))) for users in samples
    ]
    planned_x = _x(inp.users, x_max)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        "<style>"
        ".frame{fill:none;stroke:#444}.grid{stroke:#ddd}.axis{stroke:#444}"
        ".need{fill:none;stroke:#1f5fa8;stroke-width:2}.farm{stroke:#c0392b;stroke-dasharray:6 4}"
        ".room{fill:none;stroke:#2e8b57;stroke-width:2}.zero{stroke:#444}"
        ".target{stroke:#2e8b57;stroke-dasharray:6 4}"
        ".plan{stroke:#777;stroke-dasharray:2 3}.title{font-weight:bold}"
        ".ylabel{text-anchor:end}.xlabel{text-anchor:middle}.note{fill:#333}"
        "</style>",
        f'<text x="{LEFT}" y="22" class="title">{escape(inp.vpn_name)}: {plan.node_count} concentrators for '
        f"{inp.users:,} users (profile {escape(inp.profile)}, {inp.cores} cores, "
        f"{escape(inp.redundancy)})</text>",
    ]
    out += _axes(top, x_max, "Concentrators needed (incl. spares) vs users", "")
    out.append(_polyline(steps, "need"))
    y_farm = top.y(plan.node_count)
    out.append(
        f'<line x1="{LEFT}" y1="{_n(y_farm)}" x2="{LEFT + PLOT_WIDTH}" y2="{_n(y_farm)}" class="farm"/>'
    )
    out.append(
        f'<text x="{LEFT + 6}" y="{_n(y_farm - 6)}" class="note">this farm: {plan.node_count} nodes</text>'
    )
    out += _axes(bottom, x_max, "Headroom of this farm vs users (planned failures down)", " %")
    out.append(_polyline(headroom, "room"))
    for value, css in ((0, "zero"), (float(inp.headroom_percent), "target")):
        y = bottom.y(value)
        out.append(f'<line x1="{LEFT}" y1="{_n(y)}" x2="{LEFT + PLOT_WIDTH}" y2="{_n(y)}" class="{css}"/>')
    out.append(
        f'<text x="{LEFT + PLOT_WIDTH - 6}" y="{_n(bottom.y(float(inp.headroom_percent)) - 6)}" '
        f'class="note" text-anchor="end">planned headroom {fmt(inp.headroom_percent)} %</text>'
    )
    for panel in (top, bottom):
        out.append(
            f'<line x1="{_n(planned_x)}" y1="{_n(panel.top)}" x2="{_n(planned_x)}" '
            f'y2="{_n(panel.top + panel.height)}" class="plan"/>'
        )
    out.append(
        f'<text x="{_n(planned_x + 4)}" y="{_n(top.top + 14)}" class="note">planned: {inp.users:,} '
        "users</text>"
    )
    out.append(
        f'<text x="{LEFT + PLOT_WIDTH / 2}" y="{HEIGHT - 18}" class="xlabel">users '
        f"(peak {fmt(inp.concurrency_percent)} % connected)</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- Markdown


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _words(plan: Plan) -> list[str]:
    inp, sizing = plan.input, plan.sizing
    profile = PROFILES[inp.profile]
    tightest = next(result for result in sizing.limits if result.key == sizing.binding)
    capacity = farm_capacity(plan)
    capacity_users = math.floor(capacity * 100 / frac(inp.concurrency_percent))
    share, limit = survivor_buckets(plan), fmt(math.floor(tightest.users_per_node))
    lb_gbps = sizing.concurrent * profile.mbps_per_user / 1000
    spares = f"{sizing.spares} spare node{'s' if sizing.spares != 1 else ''}"
    return [
        f"The farm serves **{inp.users:,} users**; at the peak "
        f"{fmt(inp.concurrency_percent)} % of them "
        f"(**{sizing.concurrent:,}**) are connected at once, each using about "
        f"{fmt(profile.mbps_per_user)} Mbps (profile `{profile.name}`). It runs "
        f"**{plan.node_count} concentrators** of {inp.cores} cores, {fmt(inp.nic_gbps)} Gbps and "
        f"{fmt(inp.memory_gib)} GiB behind an LB pair (lb1, lb2) sharing the VIP {inp.vip}.",
        "",
        f"{sizing.base_nodes} of them {'carries' if sizing.base_nodes == 1 else 'carry'} the peak plus "
        f"{fmt(inp.headroom_percent)} % headroom "
        f"({fmt(math.floor(sizing.load))} users). The binding limit is **{tightest.title}**: "
        f"{tightest.how}, i.e. {fmt(math.floor(tightest.users_per_node))} users per node. "
        f"{spares[0].upper() + spares[1:]} ({inp.redundancy}) {'keeps' if sizing.spares == 1 else 'keep'} "
        "that capacity when "
        f"{'a node fails' if sizing.spares == 1 else f'{sizing.spares} nodes fail'}.",
        "",
        f"Each concentrator has its own virtual-IP pool, carved from {inp.supernet}: {plan.pools.reason}.",
        "",
        f"With {plan.pools.failed} node{'s' if plan.pools.failed != 1 else ''} down, this farm carries up to "
        f"**{capacity:,} concurrent users** before its headroom is gone ({capacity_users:,} users at "
        f"{fmt(inp.concurrency_percent)} % peak): users spread by LB bucket, and a survivor owning "
        f"{share} of {plan.buckets} buckets reaches {limit} users when the farm holds "
        f"{limit} x {plan.buckets} / {share}. The active load balancer forwards all "
        "tunnel traffic: "
        f"about {fmt(lb_gbps)} Gbps at the peak; users behind one carrier-grade NAT share an address "
        "and so a node, which the headroom also has to absorb.",
    ]


def render_markdown(plan: Plan, chart: str) -> str:
    """CAPACITY.md: the plan in words and the chart, then the node count, layout, tuning, inputs, model."""
    lines = [
        *_intro(plan, chart),
        *_why_nodes_section(plan),
        *_layout_section(plan),
        *_tuning_section(plan),
        *_inputs_section(plan),
        *_model_section(plan),
    ]
    return "\n".join(lines)


def _intro(plan: Plan, chart: str) -> list[str]:
    return [
        f"<!-- Written by `svpn plan` (svpn {plan.version}) from plan input sha256:{plan.input_hash} -->",
        f"# Capacity plan: {plan.input.vpn_name}",
        "",
        *_words(plan),
        "",
        f"![Users vs concentrators needed, and this farm's headroom]({chart})",
        "",
    ]


def _why_nodes_section(plan: Plan) -> list[str]:
    inp, sizing = plan.input, plan.sizing
    return [
        f"## Why {plan.node_count} concentrators",
        "",
        f"Nodes = max over the limits of ceil({sizing.concurrent:,} concurrent x "
        f"(1 + {fmt(inp.headroom_percent)} %) / users per node) + {sizing.spares} "
        f"({inp.redundancy}).",
        "",
        *_table(
            ["limit", "users per node", "nodes", "how", "source"],
            [
                [
                    f"**{r.title}**" if r.key == sizing.binding else r.title,
                    fmt(math.floor(r.users_per_node)),
                    str(r.nodes),
                    r.how,
                    r.source,
                ]
                for r in sizing.limits
            ],
        ),
        "",
        f"Result: {sizing.reason}.",
        "",
    ]


def _layout_section(plan: Plan) -> list[str]:
    return [
        "## Pools, addresses and LB buckets",
        "",
        f"Pool size: {plan.pools.reason}. strongSwan hands out every address of a CIDR pool but its network "
        "and broadcast addresses.",
        "",
        *_table(
            ["node", "pool", "client addresses", "inside", "internal", "LB buckets (all up)"],
            [
                [
                    node.name,
                    str(node.pool),
                    f"{node.pool_addresses:,}",
                    str(node.inside),
                    str(node.internal),
                    str(plan.bucket_counts[node.name]),
                ]
                for node in plan.concentrators
            ],
        ),
        "",
        *_table(
            ["load balancer", "public", "inside"],
            [[lb.name, str(lb.public), str(lb.inside)] for lb in plan.loadbalancers],
        ),
        "",
        f"The LB hashes each user's source address into one of {plan.buckets} buckets; "
        "`svpn.farm.buckets` computes "
        "the owners from the concentrators and their health at deploy time (rendezvous hashing with "
        "a balance "
        "cap), so they are not stored in the inventory. With all nodes up each owns "
        f"{_span(plan.bucket_counts.values())} buckets; with "
        f"{plan.pools.failed} down each survivor owns at most {survivor_buckets(plan)}.",
        "",
    ]


def _tuning_section(plan: Plan) -> list[str]:
    inp = plan.input
    first_new = next((node for node in plan.concentrators if not node.existing), plan.concentrators[0])
    how = first_new.tuning.explain(
        inp.cores, first_new.pool_addresses, inp.cores * frac(inp.setup_rate_per_core)
    )
    return [
        "## charon tuning per node",
        "",
        *_table(
            [
                "node",
                "threads",
                "ikesa_table_size",
                "ikesa_table_segments",
                "init_limit_half_open",
                "cookie_threshold",
                "block_threshold",
            ],
            [
                [node.name, *(str(value) for value in vars(node.tuning).values())]
                for node in plan.concentrators
            ],
        ),
        "",
        *[f"- `{key}`: {text}" for key, text in how.items()],
        "",
    ]


def _inputs_section(plan: Plan) -> list[str]:
    inp = plan.input
    return [
        "## Inputs",
        "",
        *_table(
            ["input", "value"],
            [[f"`{key}`", _value_text(value)] for key, value in inp.values().items()],
        ),
        "",
        "Where the per-node limits come from:",
        "",
        *[f"- `{key}` = {fmt(getattr(inp, key))}: {inp.source(key)}" for key in LIMIT_KEYS],
        *[f"- profile `{p.name}`: {p.description}" for p in PROFILES.values()],
        "",
    ]


def _model_section(plan: Plan) -> list[str]:
    return [
        "## Model",
        "",
        "- Concurrent users = ceil(users x peak %). Each limit gives the users one node carries; nodes = the "
        "largest ceil(concurrent x (1 + headroom) / users per node), at least 1, plus the redundancy spares.",
        f"- Reconnect storm: after an LB failover (or a node failure) every connected user reconnects within "
        f"{plan.input.storm_seconds} s, so a node must set up its users in that window at the measured "
        "rate per core.",
        f"- Memory: charon may use {fmt(MEMORY_SHARE_FOR_CHARON)} of a node's RAM; "
        "the rest is "
        "the OS, page cache and logs.",
        "- Throughput: a node forwards min(cores x ESP Gbps per core, NIC Gbps); the profile's Mbps per user "
        "counts both directions.",
        f"- Pools: a survivor of {plan.pools.failed} failure(s) owns at most ceil({plan.buckets} / "
        "survivors) "
        "buckets, so its pool must hold that share of the concurrent users plus the headroom "
        "(rounded up to a "
        "power-of-two pool; this is never less than ceil(concurrent / survivors)).",
        "- Growing (`svpn plan --from DIR --users N --out DIR`) keeps every existing node, name, pool and "
        "address; new nodes are added, and the node count is raised if an existing pool is too small for the "
        "new failover share.",
        "",
    ]


def _span(values: Iterable[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def _value_text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(f"`{item}`" for item in value) if value else "(none)"
    if isinstance(value, int | float | Fraction) and not isinstance(value, bool):
        return fmt(value)
    return f"`{value}`"
