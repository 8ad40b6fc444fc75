"""Plan: which targets to try for a request, in which order, with which retries."""
