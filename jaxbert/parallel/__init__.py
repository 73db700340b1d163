"""jaxbert.parallel."""
