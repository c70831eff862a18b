r"""The streamed dialogues the server keeps: one :class:`~dsgdn_pyg.inference.streaming.
StreamingRecognizer` per WebSocket (sharing the one loaded model, so that two sockets may
both call a dialogue ``'call-1'``), and over all sockets a bounded registry of the open
dialogues, by last push, so that idle ones are found without a scan.

Only the worker thread touches these (:mod:`~dsgdn_pyg.serve.batching`): the registry needs
no lock, and a dialogue is never freed in the middle of its own push.
"""
import itertools
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable, List, Tuple

_socket_ids = itertools.count(1)


class StreamSocket:
    r"""One WebSocket's side of the protocol: its recognizer (its open dialogues) and the
    number of its last line."""
    def __init__(self, recognizer: Any):
        self.id = next(_socket_ids)
        self.recognizer = recognizer
        self.lines = 0

    def __repr__(self) -> str:
        return f"StreamSocket({self.id}, open={len(self.recognizer.dialogues)})"


Key = Tuple[StreamSocket, Hashable]


class Sessions:
    r"""The open dialogues of every socket, at most :obj:`limit`, each ended after
    :obj:`idle_timeout_s` seconds without a push.

    Args:
        limit (int): Most open dialogues over all sockets.
        idle_timeout_s (float): Seconds without a push after which a dialogue is idle.
        clock (callable): Seconds, monotonic. (default: :func:`time.monotonic`)
    """
    def __init__(self, limit: int, idle_timeout_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.idle_timeout_s, self.clock = int(limit), float(idle_timeout_s), clock
        self._last: 'OrderedDict[Key, float]' = OrderedDict()  # oldest push first

    def __len__(self) -> int:
        return len(self._last)

    def __contains__(self, key: Key) -> bool:
        return key in self._last

    def full(self) -> bool:
        return len(self._last) >= self.limit

    def touch(self, key: Key) -> None:
        r"""Records a push to :obj:`key` now (opening it if new)."""
        self._last[key] = self.clock()
        self._last.move_to_end(key)

    def end(self, key: Key) -> None:
        r"""Forgets :obj:`key` (the socket's recognizer has already freed it)."""
        self._last.pop(key, None)

    def close_socket(self, socket: StreamSocket) -> int:
        r"""Frees every dialogue of :obj:`socket` (gone); returns how many were open."""
        dialogues = socket.recognizer.dialogues
        for dialogue in dialogues:
            self._last.pop((socket, dialogue), None)
        socket.recognizer.reset()
        return len(dialogues)

    def end_idle(self) -> List[Key]:
        r"""Ends and frees the dialogues idle for :obj:`idle_timeout_s`; returns them."""
        deadline = self.clock() - self.idle_timeout_s
        ended = []
        while self._last:
            key, last = next(iter(self._last.items()))
            if last > deadline:
                break
            del self._last[key]
            key[0].recognizer.reset(key[1])
            ended.append(key)
        return ended
