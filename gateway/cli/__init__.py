"""`python -m gateway`: serve, migrate, and the key-store commands (API keys, virtual keys,
configs, prompts, master-key rotation)."""
