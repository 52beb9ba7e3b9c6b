"""kling."""
