"""One module per command; each is a thin Click function over one library call."""
