"""Small shared pieces with no domain: the clock, the one atomic file write, settings."""
