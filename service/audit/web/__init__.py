"""The web side of audits: REST under /v1/audit, the QA pages, who may use them, and the wire models."""
