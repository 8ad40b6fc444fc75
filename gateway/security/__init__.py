"""Rules that keep secrets and work bounded: where a stored secret may go (destinations),
which keys may use what (access), redaction of secrets from upstream text, linear-time
regular expressions, and service-account tokens minted for providers."""
