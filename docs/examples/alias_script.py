"""A script that runs Nameko code on nameko_like: it imports nameko_like first.

    NAMEKO_LIKE_ALIAS_NAMEKO=1 python alias_script.py
"""

# The order is the point: importing nameko_like first turns the alias on.
# isort: off
import nameko_like  # noqa: F401
from nameko.runners import run_services  # from here on, nameko is nameko_like
from nameko.standalone.rpc import ClusterRpcProxy

from alias_nameko_service import VisitsService
# isort: on


def main(config):
    with run_services(config, VisitsService), ClusterRpcProxy(config, timeout=10) as cluster:
        cluster.visits.visit("home")
        return cluster.visits.visit("home")


if __name__ == "__main__":
    from nameko_like._eventlet import eventlet

    eventlet.monkey_patch()  # as `nameko_like run` does, before any I/O
    print(main({"AMQP_URI": "memory://"}))
