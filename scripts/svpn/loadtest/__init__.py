"""`svpn loadtest`: load generators against a lab farm (logic, generator image, the run). Imports svpn.lab,
svpn.access, svpn.farm and svpn.core.
"""
