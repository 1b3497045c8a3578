"""Ray actors hosting core objects: one business universe per actor, the sandbox's actor pool."""
