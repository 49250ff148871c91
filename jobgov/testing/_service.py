"""The one async-context-manager shape the test doubles share."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncService:
    """``async with`` over :meth:`start` and :meth:`stop`; a start that fails is cleaned up."""

    async def start(self) -> None:
        """Bring the service up (servers listen, processes answer, readers connect)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Tear it down; idempotent, and safe after a failed or partial start."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
