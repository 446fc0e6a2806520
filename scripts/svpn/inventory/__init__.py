"""Inventories as files: render a plan to YAML, read and check an inventory, grow, diff and write it.

schema (files, groups, keys) < yamlout (the YAML writer) < render (plan -> files); checks (`farm_problems`)
< read (files -> the farm as Ansible sees it, `check_tree`) < grow (an inventory to grow); tree (the
directory: read, diff, write). Imports svpn.planning, svpn.farm and svpn.core.
"""
