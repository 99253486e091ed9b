"""Exit 0 if a travel service answers, 1 if not: the containers' healthcheck.

Usage, from ``examples/travel``::

    python -m travel.healthcheck airports|trips|gateway [--config config.yaml]

For airports and trips it makes an RPC call to their ``health`` method
(which also touches their storage); for the gateway it requests
``/health`` over HTTP. The config is read the way the services read it,
environment substitution included.
"""

import argparse
import sys
import urllib.request

from nameko_like.config_loader import load_config
from nameko_like.standalone.rpc import ClusterRpcProxy

#: Seconds a check may take before the service counts as unhealthy.
TIMEOUT = 5
#: The services it can check.
SERVICES = ("airports", "trips", "gateway")
#: The config read unless --config names another.
DEFAULT_CONFIG = "config.yaml"


def check_rpc(config, service):
    # A check runs every few seconds, each with a reply queue of its own:
    # let the broker drop them soon after, not after the usual five minutes.
    config = {**config, "RPC_REPLY_QUEUE_TTL": 30}
    with ClusterRpcProxy(config, timeout=TIMEOUT) as cluster:
        cluster[service].health()


def check_http(config):
    host, _, port = config.get("WEB_SERVER_ADDRESS", "0.0.0.0:8000").rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"  # listening everywhere: ask on loopback
    with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=TIMEOUT) as response:
        if response.status != 200:
            raise RuntimeError(f"/health answered {response.status}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m travel.healthcheck")
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    try:
        if args.service == "gateway":
            check_http(config)
        else:
            check_rpc(config, args.service)
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; say why
        print(f"{args.service}: unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.service}: healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
