"""QA audits of recorded calls: ingest, batch jobs, reports, the call list and re-audits.

Recordings go through the same pipeline as a live call (`pipelines.recording_run`), with the same
observers (emotion, rules), and land in the same store; this package adds what QA needs on top: its own
tables (jobs, a search index) on the store's engine, the report formats, the pages and the command line.
"""
