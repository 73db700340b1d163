"""jaxbert.commands."""
