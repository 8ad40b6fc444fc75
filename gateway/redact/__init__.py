"""Redacting secrets out of text (echoes.py); a leaf package that imports nothing of the
gateway. What counts as secret for a request is security/redaction.py's business."""

from gateway.redact.echoes import MIN_ECHO, MIN_SECRET, REDACTED, encoded_forms, redact

__all__ = ["MIN_ECHO", "MIN_SECRET", "REDACTED", "encoded_forms", "redact"]
