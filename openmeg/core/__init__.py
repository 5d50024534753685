"""The spine of openmeg: clock, points, bus, store, site file, errors, units."""
