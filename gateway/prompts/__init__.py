"""Prompt templates: stored, versioned chat prompts rendered with mustache and served as chats."""
