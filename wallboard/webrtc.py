"""Live video over WebRTC: the camera's own H.264, relayed to browsers without re-encoding.

One tap per camera, shared by all its viewers: the wall never opens a camera session of its
own, it listens to the packets ingest already receives (the narrow `PacketSource` protocol).
aiortc packetizes each access unit into RTP as it is; nothing is decoded or encoded here, which
is what keeps a viewer at a fraction of a percent of a core (bench/wall_bench.py measures it).

Each viewer has a bounded queue. A viewer that falls behind (slow network, stalled tab) loses
whole GOPs: its queue is emptied and it resumes at the next keyframe, so it never shows a
smeared picture and never holds memory or slows the camera or the other viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Protocol

import av
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000
TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
QUEUE_PACKETS = 120  # a few seconds of video: more than that behind is "too slow"
CONNECT_TIMEOUT_S = 20.0

PacketListener = Callable[[bytes, bool], None]


class PacketSource(Protocol):
    """What the wall needs of ingest for live video (pantau.runtime adapts it)."""

    def codec(self, camera_id: str) -> str | None:
        """The camera's video codec as FFmpeg names it ("h264", "hevc"), None before it is
        first connected."""

    def add_packet_listener(self, camera_id: str, listener: PacketListener) -> None:
        """Call `listener(access_unit, keyframe)` from the capture thread for each packet."""

    def remove_packet_listener(self, camera_id: str, listener: PacketListener) -> None: ...


class LiveError(Exception):
    """A viewer cannot be served; `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _ViewerTrack(MediaStreamTrack):
    """One viewer's video track: hands aiortc encoded packets, never frames."""

    kind = "video"

    def __init__(self, feed: _Feed) -> None:
        super().__init__()
        self.feed = feed
        self._queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue(QUEUE_PACKETS)
        self._origin = time.monotonic()
        self._await_key = True
        self.sent = 0
        self.dropped = 0

    def offer(self, data: bytes, keyframe: bool, at: float) -> None:
        """Called on the event loop for every packet of the camera."""
        if self._await_key and not keyframe:
            return
        if self._queue.full():
            # Too far behind: drop what is queued and start again at a keyframe.
            self.dropped += self._queue.qsize()
            while not self._queue.empty():
                self._queue.get_nowait()
            self._await_key = True
            if not keyframe:
                return
        self._await_key = False
        self._queue.put_nowait((data, at))

    def show_now(self, keyframe: bytes) -> None:
        """A joining viewer gets the last keyframe at once: a picture now, live from the next
        keyframe on (the deltas in between need pictures it never had)."""
        self._queue.put_nowait((keyframe, time.monotonic()))
        self._await_key = True

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        data, at = await self._queue.get()
        packet = av.Packet(data)
        # The viewer's clock is arrival time since it joined: monotonic whatever the camera's
        # own timestamps do across reconnects.
        packet.pts = int((at - self._origin) * VIDEO_CLOCK)
        packet.time_base = TIME_BASE
        self.sent += 1
        return packet


@dataclass(eq=False)
class _Feed:
    """One camera's fan-out: a single packet listener, however many viewers."""

    camera_id: str
    viewers: set[_ViewerTrack] = field(default_factory=set)
    last_key: bytes | None = None
    listener: PacketListener | None = None
    packets: int = 0


@dataclass(eq=False)  # identity: viewers live in a set
class _Viewer:
    pc: RTCPeerConnection
    track: _ViewerTrack
    user: str
    started: float = field(default_factory=time.monotonic)


class LiveVideo:
    """Answers WebRTC offers for cameras and owns every peer connection it made."""

    def __init__(self, source: PacketSource, max_viewers: int = 64) -> None:
        self._source = source
        self._max_viewers = max_viewers
        self._feeds: dict[str, _Feed] = {}
        self._viewers: set[_Viewer] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- signalling ----------------------------------------------------------------------
    async def answer(self, camera_id: str, offer_sdp: str, user: str = "") -> str:
        """The SDP answer to a browser's offer to receive `camera_id`."""
        codec = self._source.codec(camera_id)
        if codec is None:
            raise LiveError(503, "the camera has not been connected yet")
        if codec != "h264":
            raise LiveError(409, f"the camera sends {codec}; browsers get it as MJPEG")
        if "H264/90000" not in offer_sdp:
            raise LiveError(415, "this browser cannot receive H.264 over WebRTC; use MJPEG")
        if len(self._viewers) >= self._max_viewers:
            raise LiveError(503, f"all {self._max_viewers} live viewers are in use")

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        feed = self._feeds.setdefault(camera_id, _Feed(camera_id))
        track = _ViewerTrack(feed)
        viewer = _Viewer(pc, track, user)
        self._viewers.add(viewer)
        try:
            # The transceiver and its codec preferences must exist before the offer is applied:
            # aiortc settles the codecs there, and VP8 would mean a re-encode.
            pc.addTransceiver(track, direction="sendonly").setCodecPreferences(
                _h264_passthrough_codecs()
            )
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            if "H264/90000" not in pc.localDescription.sdp:
                raise LiveError(415, "no H.264 mode in common with this browser; use MJPEG")
        except LiveError:
            await self._drop(viewer)
            raise
        except (ValueError, AttributeError, IndexError, OperationError) as exc:  # bad SDP
            await self._drop(viewer)
            raise LiveError(400, f"unusable SDP offer: {exc}") from exc
        except Exception as exc:
            # Whatever else fails here must not leave a half-made viewer holding a slot.
            await self._drop(viewer)
            log.exception("camera=%s live viewer=%s could not be set up", camera_id, user)
            raise LiveError(503, f"live video could not start: {exc}") from exc

        @pc.on("connectionstatechange")
        async def _changed() -> None:
            log.info("camera=%s live viewer=%s webrtc=%s", camera_id, user, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self._drop(viewer)

        self._join(feed, track)
        self._spawn(self._expire_unconnected(viewer))
        log.info("camera=%s live viewer=%s joined (%d on camera)", camera_id, user,
                 len(feed.viewers))  # fmt: skip
        return str(pc.localDescription.sdp)

    async def close(self) -> None:
        for viewer in list(self._viewers):
            await self._drop(viewer)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stats(self) -> dict[str, object]:
        return {
            "viewers": len(self._viewers),
            "cameras": {
                cid: {"viewers": len(f.viewers), "packets": f.packets}
                for cid, f in self._feeds.items()
                if f.viewers
            },
            "dropped_packets": sum(v.track.dropped for v in self._viewers),
        }

    def tapped_cameras(self) -> list[str]:
        """Cameras whose packets the wall is listening to right now (one tap each)."""
        return [cid for cid, f in self._feeds.items() if f.listener is not None]

    # ---- fan-out -------------------------------------------------------------------------
    def _join(self, feed: _Feed, track: _ViewerTrack) -> None:
        if feed.last_key is not None:
            track.show_now(feed.last_key)
        feed.viewers.add(track)
        if feed.listener is None:
            loop = asyncio.get_running_loop()

            def on_packet(data: bytes, keyframe: bool) -> None:  # capture thread
                at = time.monotonic()
                with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                    loop.call_soon_threadsafe(self._deliver, feed, data, keyframe, at)

            feed.listener = on_packet
            self._source.add_packet_listener(feed.camera_id, on_packet)

    def _deliver(self, feed: _Feed, data: bytes, keyframe: bool, at: float) -> None:
        feed.packets += 1
        if keyframe:
            feed.last_key = data
        for track in feed.viewers:
            track.offer(data, keyframe, at)

    def _leave(self, track: _ViewerTrack) -> None:
        feed = track.feed
        feed.viewers.discard(track)
        if not feed.viewers and feed.listener is not None:
            # Nobody watches: stop copying this camera's packets at all.
            self._source.remove_packet_listener(feed.camera_id, feed.listener)
            feed.listener = None
            feed.last_key = None

    async def _drop(self, viewer: _Viewer) -> None:
        if viewer not in self._viewers:
            return
        self._viewers.discard(viewer)
        self._leave(viewer.track)
        viewer.track.stop()
        await viewer.pc.close()

    async def _expire_unconnected(self, viewer: _Viewer) -> None:
        # A browser that got its answer but never connected (closed tab, blocked UDP) would
        # otherwise hold a viewer slot and its queue forever.
        await asyncio.sleep(CONNECT_TIMEOUT_S)
        if viewer in self._viewers and viewer.pc.connectionState != "connected":
            log.warning("camera=%s live viewer=%s never connected; dropped",
                        viewer.track.feed.camera_id, viewer.user)  # fmt: skip
            await self._drop(viewer)

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _h264_passthrough_codecs() -> list[RTCRtpCodecCapability]:
    """H.264 with packetization-mode=1 only: packets go out as they came, so the answer must
    not let the browser pick VP8 (which would need a re-encode)."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    return [
        c
        for c in codecs
        if c.mimeType.lower() == "video/h264" and c.parameters.get("packetization-mode") in ("1", 1)
    ] + [c for c in codecs if c.mimeType.lower() == "video/rtx"]
