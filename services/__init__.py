"""hotlead's processes: ingest, scorer and handoff, the shared kit they use, and the CLI."""
