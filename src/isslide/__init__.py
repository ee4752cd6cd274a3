"""isslide: InSAR slow-moving-ground dataset pipeline (ISSLIDE)."""

__version__ = "0.1.0"
