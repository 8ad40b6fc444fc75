"""Linear-time regular expressions (RE2) for every pattern a client or a config supplies:
routing conditions and guardrail checks. A leaf package: it imports nothing of the gateway."""
