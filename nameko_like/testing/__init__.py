"""Helpers for testing services and extensions built on nameko_like."""

#: Where RabbitMQ's management API listens with its default credentials
#: (the default of the pytest plugin's ``--rabbit-api-uri``).
DEFAULT_MANAGEMENT_URL = "http://guest:guest@localhost:15672"
