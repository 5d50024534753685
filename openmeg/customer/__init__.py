"""Customer domain (Y.2071 clause 8): meters, premises control, trading, revenue."""
