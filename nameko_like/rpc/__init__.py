"""RPC over AMQP: ``@rpc`` to serve, ``RpcProxy`` to call.

Mirrors ``nameko.rpc``: the same names, and the same exchange, queue, routing
key and header names on the wire (see :mod:`nameko_like.rpc.wire`).
"""

from nameko_like.rpc.client import MethodProxy, RpcReply, ServiceProxy
from nameko_like.rpc.entrypoint import Rpc, RpcConsumer, rpc
from nameko_like.rpc.proxy import RpcProxy
from nameko_like.rpc.reply_listener import ReplyListener

__all__ = [
    "MethodProxy", "ReplyListener", "Rpc", "RpcConsumer", "RpcProxy", "RpcReply",
    "ServiceProxy", "rpc",
]
