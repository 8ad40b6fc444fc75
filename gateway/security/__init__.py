"""Rules that keep secrets where they belong: where a stored secret may go (destinations),
which keys may use what (access), redaction of secrets from upstream text, and
service-account tokens minted for providers."""
