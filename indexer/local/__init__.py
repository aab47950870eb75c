"""Tools for one machine, not in the Lambda image: folder and queue watchers (watch), the API over
HTTP (api_server), the local stack (stack) and the selftest. Imports aws and below."""
