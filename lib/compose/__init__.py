"""The Compose form as plain Python: form state, one evaluation per rerun, variants, drafts, snippets."""
