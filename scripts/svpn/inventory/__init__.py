"""Inventories as files: render a plan to YAML, read and check an inventory, grow, diff and write it.

schema (files, groups, keys) < yamlout (the YAML writer) < render (plan -> files); checks (`farm_problems`)
< read (the files checked as files, and against the farm ansible-core read) < tree (the directory: read it
through svpn.core.ansible_inventory, check, diff, write) < grow (an inventory to grow). Imports
svpn.planning, svpn.farm and svpn.core.
"""
