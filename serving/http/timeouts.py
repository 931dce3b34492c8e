"""Two limits uvicorn's h11 protocol lacks, for clients that send too little or too much:

- a deadline for request headers: uvicorn waits forever for a client that connects and sends
  nothing, or only part of a request line or headers (its keep-alive timeout applies only between
  requests, and any byte cancels it);
- a bounded lingering read: after an early answer (413, 404, 405, 415 or 429 before the body was
  read) uvicorn reads and drops the whole declared body, 15 MB of work on the event loop per
  abusive request, and for as long as it keeps coming: any byte cancels its keep-alive timer, so a
  client trickling a byte every few seconds held the connection (and a file descriptor) for good.
  Up to LINGER_BYTES are dropped, for at most the header timeout (so a client slightly over the
  limit still reads its 413), then the connection is closed.
"""

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

LINGER_BYTES = 1 << 20


def h11_protocol_with_read_limits(header_timeout: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose next request's headers are not all in
    `header_timeout` seconds after it opened or after the previous response, or that sends more
    than LINGER_BYTES, or for longer than `header_timeout`, of a body the server has already answered."""

    class ReadLimitsH11Protocol(H11Protocol):
        _deadline = None
        _dropped = 0

        def connection_made(self, transport):
            super().connection_made(transport)
            self._start_deadline()

        def data_received(self, data):
            super().data_received(data)
            if self._lingering():
                self._dropped += len(data)
                if self._dropped > LINGER_BYTES:
                    self.transport.close()
            elif self.conn.their_state is not h11.IDLE:  # the request line and headers are in
                self._cancel_deadline()

        def on_response_complete(self):
            super().on_response_complete()
            self._dropped = 0
            if not self.transport.is_closing():
                self._start_deadline()

        def connection_lost(self, exc):
            self._cancel_deadline()
            super().connection_lost(exc)

        def _start_deadline(self):
            self._cancel_deadline()
            self._deadline = self.loop.call_later(header_timeout, self._close_if_waiting)

        def _cancel_deadline(self):
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _lingering(self) -> bool:
            """The answer is sent while the request's body still comes in."""
            return self.cycle is not None and self.cycle.response_complete and self.conn.their_state is h11.SEND_BODY

        def _close_if_waiting(self):
            if (self.conn.their_state is h11.IDLE or self._lingering()) and not self.transport.is_closing():
                self.transport.close()

    return ReadLimitsH11Protocol
