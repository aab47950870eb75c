"""`pixdex`: the command line. main builds the parser from the command modules and plugins
(plugins); common holds exit codes, argument types and the stop-on-signal helper. The top layer."""
