"""The audit trail: one event for every security-relevant success and failure."""
