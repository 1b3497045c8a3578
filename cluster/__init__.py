"""Ray-side plumbing: settings, Ray connection, the Redis store, job entrypoints, the CLI."""
