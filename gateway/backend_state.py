"""Fail fast while no backend is ready: the channel's connectivity state, watched.

With every backend down, a call would be retried (UNAVAILABLE, up to 5 attempts with
backoff: ~0.76 s) before the client got its 503. The channel already knows: with
round-robin over health-checked backends its state is TRANSIENT_FAILURE exactly while
no backend can take a call, and it stays so (reconnecting in the background, at most
`max_reconnect_backoff_ms` apart) until one is READY. So a task follows the state
(`wait_for_state_change`, no polling) and requests are answered 503 at once while it
is TRANSIENT_FAILURE; the first READY lets them through again.
"""

from __future__ import annotations

from typing import Final

import grpc

from gateway.errors.grpc_status import rpc_error

NO_BACKEND_READY: Final = "No backend is ready"


class BackendWatch:
    """`down` is True while the channel reports TRANSIENT_FAILURE."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self.down = False

    async def follow(self) -> None:
        """Run until cancelled, keeping `down` up to date."""
        channel = self._channel
        state = channel.get_state(try_to_connect=True)
        while True:
            self.down = state is grpc.ChannelConnectivity.TRANSIENT_FAILURE
            await channel.wait_for_state_change(state)
            state = channel.get_state(try_to_connect=True)

    def refuse_if_down(self) -> None:
        """Raise UNAVAILABLE (answered 503 `backend_unavailable`) while no backend is ready."""
        if self.down:
            # A new exception each time: re-raising one instance would grow its traceback.
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, NO_BACKEND_READY)
