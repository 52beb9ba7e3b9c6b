"""Kling 3.0 itself: the rules table, the typed job and its payload, validation, pricing, media checks."""
