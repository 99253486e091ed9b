"""Generic AMQP extensions: ``Publisher``, ``@consume`` and the shared consumer.

These are the building blocks RPC and events are made of, and the ones to
use for plain messaging with queues and exchanges of your own. As Nameko's
``nameko.messaging``, this module offers every name; each lives in a module
of its own:

* :mod:`nameko_like.messaging.headers`: ``HeaderEncoder``, ``HeaderDecoder``;
* :mod:`nameko_like.messaging.queue_consumer`: ``QueueConsumer``;
* :mod:`nameko_like.messaging.consumer`: ``Consumer``, ``consume``;
* :mod:`nameko_like.messaging.publisher`: ``Publisher``.
"""

from nameko_like.amqp.context_headers import decode_context_headers, encode_context_headers
from nameko_like.messaging.consumer import Consumer, consume
from nameko_like.messaging.headers import HeaderDecoder, HeaderEncoder
from nameko_like.messaging.publisher import Publisher
from nameko_like.messaging.queue_consumer import QueueConsumer

__all__ = [
    "Consumer",
    "HeaderDecoder",
    "HeaderEncoder",
    "Publisher",
    "QueueConsumer",
    "consume",
    "decode_context_headers",
    "encode_context_headers",
]
