"""Catalogue of waste and renewable resources, lots, media and search (see issue 3)."""
