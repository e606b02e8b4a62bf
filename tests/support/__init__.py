"""Helpers shared by test folders (tests/ is on the import path: `from support.heard import ...`)."""
