"""QA audits of recorded calls: ingest, batch jobs, reports, the call list and re-audits.

Recordings go through the same pipeline as a live call (`pipelines.recording_run`), with the same
observers (emotion, rules), and land in the same store; this package adds what QA needs on top: its own
tables (jobs, a search index) on the store's engine, the report formats, the pages and the command line.

Where things are, by what a reader looks for:

- `intake/`: what comes in: the recordings a batch names (`sources`), their metadata (`metadata`), the check
  that a file can be audited (`probe`), stable call ids (`ids`).
- `running/`: auditing one recording (`runner`), the rules a batch uses (`rulesets`), a stored call as the
  rules engine's timeline (`timeline`), re-auditing stored calls with other rules (`reaudit`).
- `jobs/`: the queue of audit jobs (`queue`); with audit_engine=celery the Celery app (`celery_app`), the
  worker process (`worker`) and the claims that keep a file to one worker (`claims`).
- `outputs/`: the report (`report`, JSON), its HTML and labels (`render`), the emotion plot (`plot`), CSV
  (`exports`), the report files the command line writes (`files`).
- `web/`: the REST under /v1/audit (`api`), the QA pages (`pages`), who may use them (`auth`), what a tenant
  or team sees (`tenancy`), the wire models (`models`).
- here: the command line (`cli`), generated calls for tests and benchmarks (`synthetic`), and the templates
  and static files that the reports and the pages share.
"""
