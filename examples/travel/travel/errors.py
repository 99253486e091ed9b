"""Errors the travel services raise on purpose, shared by all three.

An exception raised by an RPC method reaches the caller as data. Registering
its class with ``deserialize_to_instance`` makes the caller get the class
itself back (not a generic ``RemoteError``), so the gateway can tell "no
such airport" from a crash and answer 404 rather than 500. Every process
that may receive these errors must import this module; the services do.
"""

from nameko_like.exceptions import deserialize_to_instance


@deserialize_to_instance
class NotFound(Exception):
    """No record has the id asked for (HTTP 404)."""


@deserialize_to_instance
class InvalidRequest(Exception):
    """The request is well-formed but cannot be carried out (HTTP 400)."""


@deserialize_to_instance
class UnknownAirport(InvalidRequest):
    """A trip names an airport that does not exist (HTTP 400)."""


#: What the RPC methods raise as part of their contract: logged as warnings,
#: not as errors with a traceback.
EXPECTED = (NotFound, InvalidRequest)
