"""nameko_like: a Nameko-style microservices framework."""

__version__ = "0.1.0"
