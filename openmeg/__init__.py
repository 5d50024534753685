"""openmeg: run a micro energy grid (MEG) as framed by ITU-T Recommendation Y.2071."""

__version__ = "0.1.0"
