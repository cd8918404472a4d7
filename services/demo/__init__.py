"""The demo feed: simulated people behaving through ingest's public HTTP API."""
