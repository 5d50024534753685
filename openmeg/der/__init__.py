"""DER domain (Y.2071 clause 8): what each kind of DER is to the platform."""
