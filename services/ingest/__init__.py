"""The ingest service: hotlead's public HTTP face.

Email clients load its pixel, people follow its signed click redirects,
browsers send its beacon, email providers and backend systems post to it; it
turns all of that into CloudEvents on Kafka. `create_app(settings, publisher)`
builds the ASGI app; `hotlead ingest` runs it.
"""
