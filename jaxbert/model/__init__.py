"""jaxbert.model."""
