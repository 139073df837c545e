"""A short batching window: images of concurrent requests go through the model in one forward.

The first waiting request opens a window of `window_s`; everything that arrives before it closes (up to
`max_images`) is embedded together on one model thread. While a forward runs, new requests queue up and form
the next batch, so throughput grows with load instead of queueing single-image forwards.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np


class Batcher:
    """Groups `submit` calls into batched calls of `embed` (uint8 images [n, H, W, 3] -> features [n, D])."""

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray], window_s: float = 0.005, max_images: int = 32,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.embed, self.window_s, self.max_images = embed, float(window_s), int(max_images)
        self.on_batch = on_batch or (lambda n: None)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="mcja-model")
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, images: list[np.ndarray]) -> np.ndarray:
        """Features [len(images), D] of same-size uint8 images, computed in a shared batch."""
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # started lazily on the loop that serves the requests (again if it changed)
            self.loop, self.queue = loop, asyncio.Queue()
            self.task = loop.create_task(self._run())
        future = loop.create_future()
        await self.queue.put((images, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0][0])
            deadline = time.perf_counter() + self.window_s
            while size < self.max_images:
                left = deadline - time.perf_counter()
                if left <= 0 and self.queue.empty():
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), max(left, 0.0)) if left > 0 \
                        else self.queue.get_nowait()
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                batch.append(item)
                size += len(item[0])
            await self._forward(batch, size)

    async def _forward(self, batch: list, size: int) -> None:
        """One model call for the whole batch; each request gets its rows (or the error)."""
        images = np.stack([img for imgs, _ in batch for img in imgs])
        try:
            feats = await asyncio.get_running_loop().run_in_executor(self.pool, self.embed, images)
        except Exception as err:  # noqa: BLE001 - handed to every waiting request
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        self.on_batch(size)
        start = 0
        for imgs, future in batch:
            if not future.done():
                future.set_result(feats[start : start + len(imgs)])
            start += len(imgs)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)
