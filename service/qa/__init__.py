"""QA works the findings (issue 15): a reviewer confirms or rejects a call's automatic findings and adds missed
ones, the agent acknowledges or disputes, a supervisor of the agent's team rules. docs/qa.md is the guide.

`service/persistence/qa_reviews.py` holds every table and statement, `scoring` the reviewed score, `access` who may see and do
what, `models` what crosses the API, `api` the routes under /v1/qa.
"""
