"""jaxbert.objectives."""
