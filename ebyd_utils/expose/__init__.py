"""Exposure methods, one file each, one signature: suspect model + clean defense set + parameters ->
exposed model + a per-epoch log. Defender-side: never imports `attacks`."""

from .cul import clean_unlearn

EXPOSURES = {"cul": clean_unlearn}

__all__ = ["EXPOSURES", "clean_unlearn"]
