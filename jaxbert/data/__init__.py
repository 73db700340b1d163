"""jaxbert.data."""
