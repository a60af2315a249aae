"""The HTTP edge: ASGI middleware and the mapping from typed errors to responses."""
