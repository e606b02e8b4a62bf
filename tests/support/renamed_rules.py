"""A deployment's rules file that renames one rule and one severity, for the tests of the names table."""

RENAMED = """
severity_names:
  warn: 留意（本地）
rules:
  listen.no_silence:
    name: 回应客户（本地）
"""
