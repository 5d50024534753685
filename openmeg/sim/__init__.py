"""The simulated plant: physics of every piece of equipment, the network and the weather.

The platform never imports this package; only the composition root and the CLI do.
"""
