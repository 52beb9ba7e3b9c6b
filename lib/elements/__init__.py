"""The element library: element records and rules, the library on disk, JSON export and import."""
