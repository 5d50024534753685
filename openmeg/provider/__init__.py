"""Service provider domain (Y.2071 clause 8): tariffs, billing, customer registry, providers."""
