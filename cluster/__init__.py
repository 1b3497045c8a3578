"""Ray-side plumbing: settings loading, Ray connection, the Redis store, job entrypoints, the CLI."""
