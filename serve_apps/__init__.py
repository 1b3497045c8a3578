"""twinloop on Ray Serve: a FastAPI ingress composed with one deployment per capability."""
