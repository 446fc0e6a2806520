"""`svpn loadtest`: load generators against a lab farm. Imports svpn.lab, svpn.access, svpn.farm, svpn.core.

Pure logic: names, generators, nodeconf, figures, summary. The generator image: image. The run's I/O, one
concern each: containers, undo, driver, lbs, nodes, cleanup, clients, ramp, storm, and run (the steps).
"""
