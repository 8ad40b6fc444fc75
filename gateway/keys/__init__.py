"""The key store: gateway API keys, encrypted virtual keys, saved configs, and their resolver."""
