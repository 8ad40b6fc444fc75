"""The key store: API keys, virtual keys (encrypted secrets), saved configs and prompt
templates in the database, their admin operations, and the cached `Resolver` the request
path asks."""
