"""QA works the findings (issue 15): a reviewer confirms or rejects a call's automatic findings and adds missed
ones, the agent acknowledges or disputes, a supervisor of the agent's team rules; sampling plans fill the
reviewers' work queues, calibration measures how far reviewers agree, trends follow agents and teams week by
week. docs/qa.md is the guide, and its first table says which module holds what.

Every table and statement lives in service/persistence/ (qa_reviews, qa_plans, qa_calibrations, qa_trends,
qa_work_tables, qa_call_facts), as all the project's SQL does.
"""
