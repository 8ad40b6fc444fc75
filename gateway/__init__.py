"""A Portkey-compatible AI gateway."""
