"""Auditing a recording (pipeline, then rules), the rules a batch uses, and re-auditing stored calls."""
