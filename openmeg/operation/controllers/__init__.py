"""operation/controllers package."""
