"""Prompt governance: fast detection and redaction of secrets and personal data."""

from tollway.governance.detect import data_class, redact, scan, scan_and_redact
from tollway.governance.findings import Finding, Findings

__all__ = ["Finding", "Findings", "data_class", "redact", "scan", "scan_and_redact"]
