"""The wall's WebSocket: a snapshot, then every event (resumable with ?since=<seq>)."""

import asyncio

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from wallboard.access import Access
from wallboard.deps import WallboardDeps

HEARTBEAT_S = 15.0


def ws_router(deps: WallboardDeps, access: Access) -> APIRouter:
    router = APIRouter()

    @router.websocket("/ws")
    async def ws(websocket: WebSocket, since: int | None = None) -> None:
        user = await access.ws_user(websocket)
        await websocket.accept()
        if user is None:
            # Accepted, then closed with a reason: the page learns it must log in (a refused
            # handshake would look like a network fault and be retried forever).
            await websocket.close(code=1008, reason="login required")
            return
        client, first = await deps.hub.connect(since, access.scope(user))

        async def pump() -> None:
            for message in first:
                await websocket.send_text(message)
            while True:
                try:
                    message = await asyncio.wait_for(client.queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    message = deps.hub.heartbeat()
                await websocket.send_text(message)

        async def listen() -> None:
            # The page sends nothing yet; reading is how a closed socket is noticed at once.
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = [asyncio.create_task(c) for c in (pump(), listen(), client.cut_off.wait())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[2] in done:
                await websocket.close(code=1013, reason="too slow: reconnect with ?since=")
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            deps.hub.disconnect(client)

    return router
