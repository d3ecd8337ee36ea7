"""Small helpers with no domain of their own: durations, bounded file reads, redaction, logging."""
