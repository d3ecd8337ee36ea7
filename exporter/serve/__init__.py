"""The serve loop (`loop`: gather, check, join, publish every interval) and the HTTP endpoints it feeds."""
