"""Every metric the exporters expose: name, type, labels, meaning and source. One table, read by the exporter
(types and help texts), docs/monitoring.md's test and the dashboard's and alert rules' tests. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["gauge", "counter"]
Exporter = Literal["concentrator", "loadbalancer", "both"]


@dataclass(frozen=True)
class Metric:
    name: str  # as Prometheus shows it (a counter's name ends in _total)
    kind: Kind
    labels: tuple[str, ...]
    help: str
    source: str
    exporter: Exporter

    @property
    def family(self) -> str:
        """The name prometheus_client is given (it appends _total to a counter itself)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name


def _m(name: str, kind: Kind, labels: tuple[str, ...], help_: str, source: str, exporter: Exporter) -> Metric:
    return Metric(name, kind, labels, help_, source, exporter)


C, L, B = "concentrator", "loadbalancer", "both"
METRICS: tuple[Metric, ...] = (
    _m(
        "svpn_exporter_source_up",
        "gauge",
        ("source",),
        "1 when the exporter could read this source in this scrape, else 0",
        "the exporter itself",
        B,
    ),
    _m(
        "svpn_exporter_scrape_duration_seconds",
        "gauge",
        (),
        "Wall time the exporter spent collecting this scrape",
        "the exporter itself",
        B,
    ),
    _m(
        "svpn_concentrator_charon_up",
        "gauge",
        (),
        "1 when charon answered on its vici socket, else 0",
        "vici `stats`",
        C,
    ),
    _m(
        "svpn_concentrator_ike_sas",
        "gauge",
        (),
        "IKE SAs charon holds (users connected, one IKE SA each)",
        "vici `stats` ikesas.total",
        C,
    ),
    _m(
        "svpn_concentrator_ike_sas_half_open",
        "gauge",
        (),
        "IKE SAs still being set up (half-open)",
        "vici `stats` ikesas.half-open",
        C,
    ),
    _m(
        "svpn_concentrator_ike_messages_total",
        "counter",
        ("counter",),
        "charon's IKE message and event counters (the counters plugin's global set, e.g. "
        "ike-init-in-req: IKE_SA_INIT requests received)",
        "vici `get-counters`",
        C,
    ),
    _m(
        "svpn_concentrator_setups_total",
        "counter",
        (),
        "IKE SAs established since the exporter started",
        "the attempt log (`IKE_SA svpn[N] established`)",
        C,
    ),
    _m(
        "svpn_concentrator_setup_failures_total",
        "counter",
        ("cause",),
        "Failed attempts since the exporter started, by the helpdesk's cause (svpn.helpdesk.causes); "
        "the LBs' health probes are left out",
        "the attempt log, classified by svpn.helpdesk.causes",
        C,
    ),
    _m(
        "svpn_concentrator_pool_size",
        "gauge",
        ("pool",),
        "Addresses in the virtual-IP pool",
        "vici `get-pools`",
        C,
    ),
    _m(
        "svpn_concentrator_pool_online",
        "gauge",
        ("pool",),
        "Pool addresses leased to connected users",
        "vici `get-pools`",
        C,
    ),
    _m(
        "svpn_concentrator_pool_offline",
        "gauge",
        ("pool",),
        "Pool addresses kept for users who left (reused for them first)",
        "vici `get-pools`",
        C,
    ),
    _m(
        "svpn_concentrator_esp_bytes_total",
        "counter",
        ("direction",),
        "Bytes of ESP and NAT-T (UDP 4500) packets in and out of the node, IKE on 4500 included",
        "nftables named counters of table inet svpn_concentrator",
        C,
    ),
    _m(
        "svpn_concentrator_esp_packets_total",
        "counter",
        ("direction",),
        "Packets of ESP and NAT-T (UDP 4500) in and out of the node",
        "nftables named counters of table inet svpn_concentrator",
        C,
    ),
    _m(
        "svpn_concentrator_certificate_days_left",
        "gauge",
        ("file",),
        "Days until the certificate expires (negative: expired)",
        "the certificates in /etc/swanctl/x509 and x509ca",
        C,
    ),
    _m(
        "svpn_concentrator_crl_days_left",
        "gauge",
        ("file",),
        "Days until the CRL's next update (strict revocation refuses everyone after it)",
        "the CRLs in /etc/swanctl/x509crl",
        C,
    ),
    _m(
        "svpn_concentrator_draining",
        "gauge",
        (),
        "1 when the node refuses new IKE SAs (drain), else 0",
        "nftables table inet svpn_drain",
        C,
    ),
    _m(
        "svpn_lb_node_up",
        "gauge",
        ("node",),
        "1 when the LB's health checker sees the concentrator's IKE answer, else 0",
        "/run/svpn-lb/state.json (svpn-lb-health)",
        L,
    ),
    _m(
        "svpn_lb_node_draining",
        "gauge",
        ("node",),
        "1 when the node's admin state on this LB is drain, else 0",
        "/run/svpn-lb/state.json (svpn-lb-health)",
        L,
    ),
    _m(
        "svpn_lb_buckets",
        "gauge",
        ("node",),
        "Buckets of the source-address hash table the node owns (0: gets no new users)",
        "/run/svpn-lb/state.json's table (the one in the nftables map)",
        L,
    ),
    _m(
        "svpn_lb_state_age_seconds",
        "gauge",
        (),
        "Seconds since the health checker last wrote its state (it writes every round)",
        "/run/svpn-lb/state.json",
        L,
    ),
    _m(
        "svpn_lb_conntrack_entries",
        "gauge",
        (),
        "Flows in the LB's connection-tracking table",
        "/proc/sys/net/netfilter/nf_conntrack_count",
        L,
    ),
    _m(
        "svpn_lb_vip_held",
        "gauge",
        ("vip",),
        "1 when this LB holds the VIP, else 0 (the pair's sum: 1 healthy, 0 no holder, 2 split brain)",
        "`ip -j addr` against the farm's VIPs",
        L,
    ),
)
BY_NAME = {metric.name: metric for metric in METRICS}


def metrics_of(exporter: Literal["concentrator", "loadbalancer"]) -> list[Metric]:
    return [m for m in METRICS if m.exporter in (exporter, "both")]
