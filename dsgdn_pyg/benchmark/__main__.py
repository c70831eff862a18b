r"""``python -m dsgdn_pyg.benchmark NAME IMPL OPTIONS_JSON``: the measuring process of
:func:`~dsgdn_pyg.benchmark.benchmark_scenario`; prints :func:`run_scenario`'s result as one
JSON line."""
import json
import sys
from typing import Sequence

from dsgdn_pyg.benchmark.runner import run_scenario


def _worker_main(argv: Sequence[str]) -> None:
    from dsgdn_pyg.memory import DEFAULT_MMAP_THRESHOLD, release_large_allocations

    name, impl, options = argv
    options = json.loads(options)
    # As in the command line, for both implementations alike.
    threshold = options.pop('mmap_threshold', None) or DEFAULT_MMAP_THRESHOLD
    release_large_allocations(threshold)
    result = run_scenario(name, impl, **options)
    result['mmap_threshold'] = threshold
    print(json.dumps(result))


if __name__ == '__main__':
    _worker_main(sys.argv[1:])
