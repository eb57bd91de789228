"""registry-appliance: a private container image registry that runs as one appliance."""

__version__ = "0.1.0"
