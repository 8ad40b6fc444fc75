"""Record: every request's tokens, latency and cost, written off the request path."""
