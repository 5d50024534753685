"""Distribution domain (Y.2071 clause 8): point of common coupling, transfer switch, data feeder."""
