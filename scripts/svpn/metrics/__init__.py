"""Prometheus exporters of the farm's hosts: what a concentrator and an LB expose (catalog), read from
charon's vici answers, its attempt log, nftables, the certificate files, the LB health checker's state and
the kernel (parse, attempt_tally: pure, unit-tested), and the daemon that serves them (exporter, installed on
the hosts by roles/exporter). Imports svpn.helpdesk (the attempt log's causes: one source of their names),
svpn.farm and svpn.core; everything it imports is shipped to the hosts, so it stays small.
"""
