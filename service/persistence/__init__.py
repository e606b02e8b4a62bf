"""Where callwatch's SQL lives: the engine, the tables, one outage retry, and a repository per kind of data.

- `engine`: `Database` (the engine and the retry every statement runs under), `make_engine`, `is_transient`;
- `tables`: the table definitions (the newest revision's; the schema itself is `service.migrations`');
- `search`: the full-text index of transcripts, on SQLite and PostgreSQL;
- `call_store`: `CallStore`, live and stored calls with their events, utterances and prompts;
- `call_list`: `CallList`, the QA call list (its index, query, audited calls and re-audited reports);
- `audit_jobs`: `AuditJobs`, the audit queue's batches and jobs, and the workers' claims on them.

Nothing outside this package opens a connection or builds SQL (tests/test_persistence_boundary.py, migrations
excepted), so every query rides out a database restart of up to CALLWATCH_DATABASE_RETRY_S.
"""
