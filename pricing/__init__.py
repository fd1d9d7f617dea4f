"""Trade facts, price indices, statistics rollups and live ticks (see issue 6 and METHODOLOGY.md)."""
