"""Turning images into records: the one pipeline, bucket events normalised (events), and keeping
the catalogue in step with a store (sync). Imports catalog, model, sources and the core."""
