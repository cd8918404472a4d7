"""The hand-off service: assignment, CRM upsert, Slack alert, retries, follow-up."""
