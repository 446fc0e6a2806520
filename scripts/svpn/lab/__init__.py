"""The lab: local container hosts and docker networks that stand in for real machines, their status,
and the scale-out benchmark. Imports svpn.access, svpn.farm and svpn.core.
"""
