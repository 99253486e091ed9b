"""``nameko_like run --eventlet-hub``: async def services need the asyncio hub."""

import signal

ASYNC_TICKER = """
    import asyncio
    import logging

    from nameko_like._eventlet import eventlet
    from nameko_like.timer import timer

    log = logging.getLogger("asyncticker")


    class Ticker:
        name = "ticker"

        @timer(interval=0.1)
        async def tick(self):
            await asyncio.sleep(0)
            loop = asyncio.get_running_loop()
            log.info("tick on the hub's loop: %s", loop is eventlet.hubs.get_hub().loop)
"""


def test_async_service_runs_with_eventlet_hub_asyncio(cli):
    cli.write("asyncticker.py", ASYNC_TICKER)
    run = cli.start("run", "asyncticker", "--broker", "memory://", "--eventlet-hub", "asyncio")
    run.wait_for_log("tick on the hub's loop: True")
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.log


def test_async_service_is_refused_on_the_default_hub_naming_the_switches(cli):
    cli.write("asyncticker.py", ASYNC_TICKER)
    # --eventlet-hub default: also when this test run has EVENTLET_HUB=asyncio
    result = cli("run", "asyncticker", "--broker", "memory://", "--eventlet-hub", "default")
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("nameko_like run: error: services failed to start: service "
                            "'ticker' has async def entrypoint method(s) tick")
    assert "EVENTLET_HUB=asyncio" in error
    assert "--eventlet-hub asyncio" in error
