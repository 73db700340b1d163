"""jaxbert.interop."""
