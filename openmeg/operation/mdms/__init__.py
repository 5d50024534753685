"""The meter data management system (MDMS): storage of readings, validation, estimation and
editing (VEE)."""
