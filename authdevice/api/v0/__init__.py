"""Cotter wire-compatible API (``/api/v0``)."""
