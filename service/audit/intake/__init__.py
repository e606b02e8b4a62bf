"""What comes in: recordings by path or upload, their metadata, the check that one can be audited, call ids."""
