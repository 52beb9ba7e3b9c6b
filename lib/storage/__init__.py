"""Where the app keeps its data: small interfaces (base) and today's file-based implementation (files).

Pages and lib.tasks reach the ledger, the element library, drafts and media files only through a `Storage`,
so a shared database and an object store can be added as other implementations without touching pages.
"""
