"""Count the turns of eventlet's hub, for writers that batch frames per turn.

:class:`~nameko_like.amqp.transport_tuning` sends the first frame written in
a turn of the hub at once and holds the frames written after it in the same
turn. It used to learn that a turn was over from a hub timer scheduled on
every first write: a ``Timer`` made, queued and fired per write (two per RPC
call in a service), and a due timer makes the hub poll once more, with a
zero time-out, before it sleeps. Counting the hub's turns costs one Python
call per turn instead, however many writes the turn makes.

This relies on eventlet's internals: both the default hub's ``run`` and the
asyncio hub's call ``self.fire_timers`` once per turn of their loop, looked
up on the instance, so an instance attribute takes its place. (``wait`` is
not such a point: the asyncio hub never calls it.) If a later eventlet stops
calling it, the count stands still: every write after a hub's first is then
held and sent by a greenthread of its own (correct, only slower), and
``test/amqp/test_hub_turns.py`` fails, saying so; the asyncio-hub tier runs
that test on the asyncio hub too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HubTurns", "turns_of"]

#: The hub attribute holding its counter (one per hub, whoever installs it first).
_ATTRIBUTE = "_nameko_like_turns"


class HubTurns:
    """How many turns a hub's loop has begun: a turn ends when the next fires its timers."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def turns_of(hub: Any) -> HubTurns:
    """The turn counter of ``hub`` (an eventlet hub), installed on first use."""
    turns: HubTurns | None = getattr(hub, _ATTRIBUTE, None)
    if turns is not None:
        return turns
    counter = HubTurns()
    original_fire_timers = hub.fire_timers

    def fire_timers(*args: Any, **kwargs: Any) -> Any:
        counter.count += 1
        return original_fire_timers(*args, **kwargs)

    hub.fire_timers = fire_timers
    setattr(hub, _ATTRIBUTE, counter)
    return counter
