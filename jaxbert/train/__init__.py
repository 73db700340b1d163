"""jaxbert.train."""
