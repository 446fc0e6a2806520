"""Inventories as files: render a plan to YAML, read and check an inventory, grow, diff and write it.
Imports svpn.planning, svpn.farm and svpn.core.
"""
