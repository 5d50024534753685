"""Market domain (Y.2071 clause 8): price server and local peer-to-peer clearing."""
