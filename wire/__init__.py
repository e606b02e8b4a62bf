"""The messages that cross callwatch's websockets, as pydantic models: the ingest protocol (`wire.ingest`) and
the agent feed (`wire.agent_feed`).

A package of its own, below `pipelines/`, so that the per-call pipelines can build results without importing
the service layer that serves them (tests/test_layering.py holds the order of the layers).
"""
