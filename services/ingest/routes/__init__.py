"""The HTTP routes, one module per audience: email tracking, API, webhooks, beacon, ops."""
