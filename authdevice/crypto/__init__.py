"""Cryptographic building blocks. No Django models here; callers pass keys in."""
