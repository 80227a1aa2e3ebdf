"""One module per storage protocol; see ``endpoints.protocols`` for the registry."""
