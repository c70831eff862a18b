"""The streamed dialogues' registry: bounded, idle ones ended, a closed socket's freed."""
from dsgdn_pyg.serve.sessions import Sessions, StreamSocket


class Recognizer:
    """What Sessions uses of a StreamingRecognizer: its open dialogues and reset."""
    def __init__(self):
        self.open = set()

    @property
    def dialogues(self):
        return list(self.open)

    def reset(self, dialogue=None):
        if dialogue is None:
            self.open.clear()
        else:
            self.open.discard(dialogue)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_idle_dialogues_end_oldest_first_and_touch_keeps_them():
    clock = Clock()
    sessions = Sessions(limit=3, idle_timeout_s=10, clock=clock)
    a, b = StreamSocket(Recognizer()), StreamSocket(Recognizer())
    for socket, dialogue, at in ((a, 'x', 0), (b, 'x', 1), (a, 'y', 2)):
        clock.now = at
        socket.recognizer.open.add(dialogue)
        sessions.touch((socket, dialogue))
    assert len(sessions) == 3 and sessions.full()
    clock.now = 10.5
    sessions.touch((a, 'x'))  # pushed again: not idle
    clock.now = 11.5
    assert sessions.end_idle() == [(b, 'x')]
    assert b.recognizer.open == set() and a.recognizer.open == {'x', 'y'}
    assert not sessions.full() and (a, 'x') in sessions
    clock.now = 100
    assert sessions.end_idle() == [(a, 'y'), (a, 'x')] and len(sessions) == 0


def test_a_closed_socket_frees_its_dialogues_only():
    sessions = Sessions(limit=10, idle_timeout_s=60)
    a, b = StreamSocket(Recognizer()), StreamSocket(Recognizer())
    for socket in (a, b):
        for dialogue in ('x', 'y'):
            socket.recognizer.open.add(dialogue)
            sessions.touch((socket, dialogue))
    assert sessions.close_socket(a) == 2
    assert len(sessions) == 2 and a.recognizer.open == set() and (b, 'y') in sessions
    sessions.end((b, 'y'))
    assert len(sessions) == 1
