"""Config keys and their defaults, in one place.

Keys are spelled exactly as Nameko spells them so existing config files port
unchanged.
"""

#: URI of the AMQP broker; ``memory://`` runs everything in one process.
AMQP_URI_CONFIG_KEY = "AMQP_URI"
#: Default broker when a config names none.
DEFAULT_AMQP_URI = "amqp://guest:guest@localhost:5672/"
#: Whether to use SSL for AMQP (a dict of ssl options, or True).
AMQP_SSL_CONFIG_KEY = "AMQP_SSL"
#: AMQP login method (e.g. ``EXTERNAL``); None lets kombu choose.
LOGIN_METHOD_CONFIG_KEY = "LOGIN_METHOD"
#: Extra kombu transport options.
TRANSPORT_OPTIONS_CONFIG_KEY = "TRANSPORT_OPTIONS"
#: AMQP heartbeat interval in seconds.
HEARTBEAT_CONFIG_KEY = "HEARTBEAT"
DEFAULT_HEARTBEAT = 60
#: How many unacknowledged messages a container's consumer may hold
#: (default: ``max_workers``).
PREFETCH_COUNT_CONFIG_KEY = "PREFETCH_COUNT"

#: Size of each container's worker pool.
MAX_WORKERS_CONFIG_KEY = "max_workers"
DEFAULT_MAX_WORKERS = 10
#: How many ancestors' call ids a worker context keeps.
PARENT_CALLS_CONFIG_KEY = "parent_calls_tracked"
DEFAULT_PARENT_CALLS_TRACKED = 10
#: Dotted path of a custom ServiceContainer class.
SERVICE_CONTAINER_CLS = "SERVICE_CONTAINER_CLS"

#: Name of the exchange RPC requests are published to.
RPC_EXCHANGE_CONFIG_KEY = "rpc_exchange"
DEFAULT_RPC_EXCHANGE = "nameko-rpc"
#: Seconds an idle reply queue survives on the broker.
RPC_REPLY_QUEUE_TTL_CONFIG_KEY = "RPC_REPLY_QUEUE_TTL"
DEFAULT_RPC_REPLY_QUEUE_TTL = 300

#: Serializer for outgoing messages.
SERIALIZER_CONFIG_KEY = "serializer"
DEFAULT_SERIALIZER = "json"
#: Extra serializers to register: ``{name: {encoder, decoder, content_type}}``.
SERIALIZERS_CONFIG_KEY = "SERIALIZERS"
#: Content types (serializer names) accepted on incoming messages.
ACCEPT_CONFIG_KEY = "ACCEPT"

#: Whether event exchanges are declared auto-delete.
AUTO_DELETE_EVENT_EXCHANGES_CONFIG_KEY = "AUTO_DELETE_EVENT_EXCHANGES"
#: Whether event dispatchers declare the exchanges they publish to.
DECLARE_EVENT_EXCHANGES_CONFIG_KEY = "DECLARE_EVENT_EXCHANGES"

#: Largest incoming message body, in bytes, checked before decoding;
#: bigger messages are dead-lettered (RabbitMQ 4's own default limit).
MAX_MESSAGE_SIZE_CONFIG_KEY = "MAX_MESSAGE_SIZE"
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
#: Largest body a compressed message may inflate to, in bytes.
MAX_DECODED_SIZE_CONFIG_KEY = "MAX_DECODED_SIZE"
DEFAULT_MAX_DECODED_SIZE = 64 * 1024 * 1024
#: Compression schemes accepted on incoming messages (``zlib`` — kombu's
#: ``gzip`` —, ``bzip2``, ``lzma``); others are dead-lettered.
ACCEPT_COMPRESSION_CONFIG_KEY = "ACCEPT_COMPRESSION"
DEFAULT_ACCEPT_COMPRESSION = ("zlib", "bzip2", "lzma")

#: How many times a message is redelivered before it is dead-lettered.
MAX_REDELIVERIES_CONFIG_KEY = "MAX_REDELIVERIES"
DEFAULT_MAX_REDELIVERIES = 5
#: Kind of the durable queues a service consumes: ``classic`` (as Nameko
#: declares them) or ``quorum`` (replicated on a RabbitMQ cluster; the
#: broker then enforces ``MAX_REDELIVERIES``).
QUEUE_TYPE_CONFIG_KEY = "QUEUE_TYPE"
DEFAULT_QUEUE_TYPE = "classic"
#: Seconds a graceful stop waits for running workers before killing them.
SHUTDOWN_GRACE_PERIOD_CONFIG_KEY = "SHUTDOWN_GRACE_PERIOD"
DEFAULT_SHUTDOWN_GRACE_PERIOD = 30

#: ``host:port`` the HTTP server binds.
WEB_SERVER_CONFIG_KEY = "WEB_SERVER_ADDRESS"
DEFAULT_WEB_SERVER_ADDRESS = "0.0.0.0:8000"

#: Context-data keys propagated with every call (AMQP header suffixes).
LANGUAGE_CONTEXT_KEY = "language"
USER_ID_CONTEXT_KEY = "user_id"
USER_AGENT_CONTEXT_KEY = "user_agent"
AUTH_TOKEN_CONTEXT_KEY = "auth_token"
CALL_ID_STACK_CONTEXT_KEY = "call_id_stack"
#: Prefix of AMQP headers that carry context data.
HEADER_PREFIX = "nameko"

#: Largest request body the HTTP server accepts, in bytes; bigger ones get
#: 413 before any of the body is read.
WEB_MAX_CONTENT_LENGTH_CONFIG_KEY = "WEB_MAX_CONTENT_LENGTH"
DEFAULT_WEB_MAX_CONTENT_LENGTH = 10 * 1024 * 1024
#: Seconds an HTTP client has to send a whole request head (and the longest
#: a single socket read or write may block); slow clients are disconnected.
WEB_SOCKET_TIMEOUT_CONFIG_KEY = "WEB_SOCKET_TIMEOUT"
DEFAULT_WEB_SOCKET_TIMEOUT = 30.0
#: Most HTTP connections served at once (default: 1024, or 4 x ``max_workers``
#: if that is more); idle and slow connections hold a greenthread, not a worker.
WEB_MAX_CONNECTIONS_CONFIG_KEY = "WEB_MAX_CONNECTIONS"
DEFAULT_WEB_MAX_CONNECTIONS = 1024
#: Seconds an HTTP connection may wait before the first byte of a request
#: (a new connection, or a keep-alive one between requests); then it is
#: closed. When all ``WEB_MAX_CONNECTIONS`` are taken, the longest-idle one
#: is closed to make room for a new connection.
WEB_IDLE_TIMEOUT_CONFIG_KEY = "WEB_IDLE_TIMEOUT"
DEFAULT_WEB_IDLE_TIMEOUT = 10.0
#: Most connections (HTTP and websocket) open at once from one client
#: address; more are closed on arrival. 0 for no cap (e.g. behind a reverse
#: proxy, whose address every client shares).
WEB_MAX_CONNECTIONS_PER_CLIENT_CONFIG_KEY = "WEB_MAX_CONNECTIONS_PER_CLIENT"
DEFAULT_WEB_MAX_CONNECTIONS_PER_CLIENT = 128
#: Most websockets open at once, counted apart from ``WEB_MAX_CONNECTIONS``;
#: a websocket upgrade past it gets 503.
WEB_MAX_WEBSOCKETS_CONFIG_KEY = "WEB_MAX_WEBSOCKETS"
DEFAULT_WEB_MAX_WEBSOCKETS = 1024
#: Largest websocket message a client may send, in bytes, all its fragments
#: (and, if compressed, its inflated size) counted; larger ones close the
#: connection with code 1009. Default: ``WEB_MAX_CONTENT_LENGTH``.
WEB_MAX_WEBSOCKET_MESSAGE_CONFIG_KEY = "WEB_MAX_WEBSOCKET_MESSAGE"
#: Most chunks in one chunked request body; more get 413 (each chunk costs
#: parsing work whatever its size).
WEB_MAX_REQUEST_CHUNKS_CONFIG_KEY = "WEB_MAX_REQUEST_CHUNKS"
DEFAULT_WEB_MAX_REQUEST_CHUNKS = 16384
#: Which HTTP engine serves ``@http`` and websockets: ``"httptools"`` (our
#: server, parsing with llhttp; the default) or ``"eventlet"``
#: (eventlet.wsgi, the fallback, used anyway when httptools cannot be
#: imported).
WEB_ENGINE_CONFIG_KEY = "WEB_ENGINE"
DEFAULT_WEB_ENGINE = "httptools"

#: Whether to trace with OpenTelemetry (needs ``nameko_like[tracing]``):
#: spans for workers, publishes and HTTP requests, W3C trace context in
#: message headers. Per process: on once any container with it set starts.
TRACING_CONFIG_KEY = "TRACING"

#: ``host:port`` of the operations endpoint: Prometheus ``/metrics``,
#: ``/health/live`` and ``/health/ready`` (port 0 picks a free port). Unset:
#: no endpoint and no metrics kept. Needs the ``metrics`` extra.
METRICS_ADDRESS_CONFIG_KEY = "METRICS_ADDRESS"
#: ``json`` makes ``nameko_like run``'s default logging write one JSON object
#: per record (see docs/operations.rst); ignored when ``LOGGING`` is set.
LOG_FORMAT_CONFIG_KEY = "LOG_FORMAT"

#: Seconds ``nameko_like shell`` waits for each RPC reply before raising
#: ``RpcTimeout`` (``--timeout`` overrides it; 0 waits forever). Not a
#: Nameko key: Nameko's shell waits forever.
SHELL_RPC_TIMEOUT_CONFIG_KEY = "SHELL_RPC_TIMEOUT"
DEFAULT_SHELL_RPC_TIMEOUT = 30

#: Whether every annotated entrypoint validates (and converts) its payloads
#: from its type hints (needs ``nameko_like[contracts]``); ``@validated``
#: opts in one service or method instead. Methods without annotations are
#: never validated.
VALIDATE_CONTRACTS_CONFIG_KEY = "VALIDATE_CONTRACTS"
#: URL path (e.g. ``/docs``) under which a service's own HTTP server also
#: serves its AsyncAPI and OpenAPI documents and a page rendering them.
#: Unset: not served.
CONTRACTS_DOCS_PATH_CONFIG_KEY = "CONTRACTS_DOCS_PATH"
