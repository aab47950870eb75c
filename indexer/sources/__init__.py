"""Where bytes come from: the source protocol (base), folders (files), S3 (s3), either by URI
(uris), public URLs (remote). Imports images, record, settings and errors only."""
