"""A short batching window: work items of concurrent requests are handled by one call.

The first waiting request opens a window of `window_s`; everything that arrives before it closes (up to
`max_items`) goes into one call of `fn` on the batcher's executor. While that call runs, new requests queue up
and form the next batch, so throughput grows with load instead of queueing one small call per request. The
service uses two: images -> one model forward (model thread), query features -> one index search (index thread).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Callable, Sequence


class Batcher:
    """Groups `submit(items)` calls into calls of `fn(all items) -> one result per item`, run on `executor`."""

    def __init__(self, fn: Callable[[list], Sequence[Any]], window_s: float = 0.005, max_items: int = 32,
                 on_batch: Callable[[int], None] | None = None, executor: Executor | None = None) -> None:
        self.fn, self.window_s, self.max_items = fn, float(window_s), int(max_items)
        self.on_batch = on_batch or (lambda n: None)
        self.own_pool = executor is None
        self.pool = executor or ThreadPoolExecutor(1, thread_name_prefix="mcja-batch")
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, items: list) -> Sequence[Any]:
        """The results of `fn` for `items` (in order), computed in a batch shared with concurrent requests."""
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # started lazily on the loop that serves the requests (again if it changed)
            self.loop, self.queue = loop, asyncio.Queue()
            self.task = loop.create_task(self._run())
        future = loop.create_future()
        await self.queue.put((items, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0][0])
            deadline = time.perf_counter() + self.window_s
            while size < self.max_items:
                left = deadline - time.perf_counter()
                try:  # after the window, still take what is already waiting
                    item = await asyncio.wait_for(self.queue.get(), left) if left > 0 else self.queue.get_nowait()
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                batch.append(item)
                size += len(item[0])
            await self._call(batch, size)

    async def _call(self, batch: list, size: int) -> None:
        """One call of `fn` for the whole batch; each request gets its slice of the results (or the error)."""
        flat = [x for items, _ in batch for x in items]
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.pool, self.fn, flat)
        except Exception as err:  # noqa: BLE001 - handed to every waiting request
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        self.on_batch(size)
        start = 0
        for items, future in batch:
            if not future.done():
                future.set_result(results[start : start + len(items)])
            start += len(items)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.own_pool:
            self.pool.shutdown(wait=False, cancel_futures=True)
