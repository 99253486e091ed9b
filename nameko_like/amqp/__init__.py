"""AMQP plumbing shared by the messaging, RPC and events extensions."""

from nameko_like.amqp.connection import verify_amqp_uri
from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.amqp.publish import PERSISTENT, TRANSIENT, Publisher

__all__ = ["PERSISTENT", "TRANSIENT", "PublishOutcome", "Publisher", "verify_amqp_uri"]
