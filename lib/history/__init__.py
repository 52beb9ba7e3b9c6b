"""The job ledger: one typed row, the crash-safe CSV ledger, export/import, and what History shows."""
