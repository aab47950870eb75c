"""The batch backfill container (issue 5). Builds on `indexer`; nothing here yet."""
