"""AWS entry points: the indexer Lambda (handler, its work in batch) and the image API (api).
Powertools' logger, metrics, tracer and resolver live only here. Imports ingest and below."""
