"""Template batches (issue 21 part 1): a Compose job with {{variables}} and {a|b} choices × rows of values."""
