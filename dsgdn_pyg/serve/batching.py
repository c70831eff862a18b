r"""Micro-batching: the work of concurrent requests, gathered into one call on one worker
thread.

The event loop only queues: :meth:`MicroBatcher.submit` returns a future at once (or refuses
with :class:`QueueFull` when :obj:`max_queue` jobs wait), and a gathering task hands the
waiting jobs, up to :obj:`max_batch` of them (counted by their :obj:`size`), to the worker
after at most :obj:`max_wait_ms` more, so that a lone request is not held back long and a
crowd shares its forward passes. The worker is a single thread: the model and the streamed
dialogues are never touched by two threads, and the loop stays free to read and answer.
"""
import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Deque, List, Sequence, Tuple


class QueueFull(RuntimeError):
    r"""Raised by :meth:`MicroBatcher.submit` when :obj:`max_queue` jobs already wait."""


class MicroBatcher:
    r"""Gathers jobs into batches for :obj:`run_batch`, which the worker thread calls with a
    list of jobs and a ``deliver(index, result)`` function, and which returns one result per
    job (an exception instance is raised to that job's caller). A result delivered early
    reaches its caller at once, not when the whole batch is done.

    Args:
        run_batch (callable): ``run_batch(jobs, deliver) -> results``, run on the worker
            thread.
        max_batch (int): Most job sizes per batch (a larger job runs alone).
        max_wait_ms (float): Longest wait for more jobs once one waits.
        max_queue (int): Most waiting jobs.
        size (callable): A job's size. (default: 1 each)
    """
    def __init__(self, run_batch: Callable[[List[Any], Callable[[int, Any], None]],
                                           Sequence[Any]], max_batch: int,
                 max_wait_ms: float, max_queue: int,
                 size: Callable[[Any], int] = lambda job: 1):
        self.run_batch, self.size = run_batch, size
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_ms / 1000, max_queue
        self._waiting: Deque[Tuple[Any, asyncio.Future]] = deque()
        self._queued = 0  # the sizes of the waiting jobs
        self._arrived = asyncio.Event()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix='dsgdn-pyg-serve')
        self._task = None
        self.batches = 0  # forward passes so far (for the tests and the load test)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._gather())

    async def stop(self) -> None:
        r"""Finishes the waiting jobs, then stops the gathering task and the worker."""
        while self._waiting:
            await asyncio.sleep(self.max_wait_s or 0.001)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._worker.shutdown(wait=True)

    @property
    def waiting(self) -> int:
        r"""How many jobs wait."""
        return len(self._waiting)

    def submit(self, job: Any, force: bool = False) -> asyncio.Future:
        r"""Queues :obj:`job` (past :obj:`max_queue` too with :obj:`force`: for the work
        that frees memory); the future gets its result."""
        if not force and len(self._waiting) >= self.max_queue:
            raise QueueFull(f"{len(self._waiting)} jobs wait already")
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((job, future))
        self._queued += self.size(job)
        self._arrived.set()
        return future

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        r"""Runs :obj:`function` on the worker thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, function, *args)

    def _take(self) -> List[Tuple[Any, asyncio.Future]]:
        taken, total = [], 0
        while self._waiting:
            size = self.size(self._waiting[0][0])
            if taken and total + size > self.max_batch:
                break
            taken.append(self._waiting.popleft())
            total += size
        self._queued -= total
        return taken

    async def _gather(self) -> None:
        while True:
            if not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
                # The first job on an idle worker waits a little for company; jobs that
                # gathered during the last batch go at once.
                await self._more(time.monotonic() + self.max_wait_s)
            batch = [(job, future) for job, future in self._take() if not future.cancelled()]
            if batch:
                await self._run(batch)

    async def _more(self, deadline: float) -> None:
        while self._queued < self.max_batch:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                return

    async def _run(self, batch: List[Tuple[Any, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        futures = [future for _, future in batch]

        def deliver(index: int, result: Any) -> None:  # on the worker thread
            loop.call_soon_threadsafe(_settle, futures[index], result)
        try:
            results = await self.call(self.run_batch, [job for job, _ in batch], deliver)
        except Exception as e:  # a bug of run_batch: every caller of the batch learns of it
            results = [e] * len(batch)
        self.batches += 1
        for future, result in zip(futures, results):
            _settle(future, result)


def _settle(future: asyncio.Future, result: Any) -> None:
    r"""Gives :obj:`future` its result (raised if an exception), unless it has one already
    (delivered early) or its caller has gone."""
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
