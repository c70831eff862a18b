"""The words and dialogues the server tests send (a module of its own: a test imports it by
name, which would find another directory's `conftest` first)."""
import random

WORDS = 'oh my god no way you are kidding great what okay i love it hate this so sorry'.split()


def dialogues(count, seed=0, low=1, high=7):
    """``count`` random dialogues of the tiny corpus's words and speakers."""
    rng = random.Random(seed)
    return [[{'speaker': rng.choice(['Ross', 'Rachel', 'Joey']),
              'text': ' '.join(rng.choices(WORDS, k=rng.randint(1, 6)))}
             for _ in range(rng.randint(low, high))] for _ in range(count)]
