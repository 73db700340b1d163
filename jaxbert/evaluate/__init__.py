"""jaxbert.evaluate."""
