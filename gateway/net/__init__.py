"""Outbound networking to upstreams: the pooled client, the SSRF guard and DNS pinning,
and the decoders of upstream streams (SSE, AWS event stream)."""
