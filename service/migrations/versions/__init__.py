"""Alembic revisions, one file each (a package only so that installs ship them)."""
