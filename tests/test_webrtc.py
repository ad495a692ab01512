"""Live video over WebRTC with real parts: RTSP server -> ingest capture -> LiveVideo -> aiortc
viewers that decode what they receive. The camera's H.264 goes out untouched, one tap per camera.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from events.model import CameraState
from ingest.config import CameraSource
from ingest.source import CaptureSource, PacketListener
from pantau.rtsp_server import RtspTestServer
from wallboard.webrtc import LiveError, LiveVideo


class Captures:
    """The PacketSource the runtime provides, over bare CaptureSources."""

    def __init__(self, sources: dict[str, CaptureSource]) -> None:
        self.sources = sources

    def codec(self, camera_id: str) -> str | None:
        return self.sources[camera_id].codec

    def add_packet_listener(self, camera_id: str, listener: PacketListener) -> None:
        self.sources[camera_id].add_packet_listener(listener)

    def remove_packet_listener(self, camera_id: str, listener: PacketListener) -> None:
        self.sources[camera_id].remove_packet_listener(listener)


@pytest.fixture
async def camera(
    rtsp_server: Callable[..., RtspTestServer], builtin_clip: Path
) -> AsyncIterator[CaptureSource]:
    server = rtsp_server({"cam": builtin_clip})
    src = CaptureSource("cam", CameraSource(url=server.url("cam")))
    src.start()
    deadline = time.monotonic() + 20
    while src.state != CameraState.ONLINE and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert src.state == CameraState.ONLINE, src.last_error
    yield src
    await asyncio.to_thread(src.stop, 10)


class Viewer:
    """A browser stand-in: receive-only peer connection, decodes the video it gets."""

    def __init__(self, only: str | None = None) -> None:
        self.pc = RTCPeerConnection()
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        if only is not None:
            caps = RTCRtpReceiver.getCapabilities("video")
            transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == only])
        self.answer = ""
        self.track: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        self.pc.on("track", lambda t: self.track.done() or self.track.set_result(t))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def connect(self, live: LiveVideo, camera_id: str) -> None:
        answer = await live.answer(camera_id, await self.offer(), "tester")
        self.answer = answer
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def frames(self, n: int, timeout: float = 20) -> list[tuple[int, int]]:
        track = await asyncio.wait_for(self.track, timeout)
        sizes = []
        async with asyncio.timeout(timeout):
            while len(sizes) < n:
                frame = await track.recv()
                sizes.append((frame.width, frame.height))  # type: ignore[union-attr]
        return sizes


async def test_two_viewers_get_the_cameras_own_h264_through_one_tap(
    camera: CaptureSource,
) -> None:
    live = LiveVideo(Captures({"cam": camera}))
    viewers = [Viewer(), Viewer()]  # offering VP8 first, as browsers do
    try:
        for viewer in viewers:
            await viewer.connect(live, "cam")
            # Only H.264 is answered: VP8 would need a re-encode.
            assert "H264/90000" in viewer.answer and "VP8" not in viewer.answer
        assert live.tapped_cameras() == ["cam"]
        assert len(camera._packet_listeners) == 1  # one tap, however many viewers
        got = await asyncio.gather(*(v.frames(15) for v in viewers))
        for sizes in got:
            # Decoded by the viewer at the camera's own size: nothing was scaled or re-encoded.
            assert set(sizes) == {(960, 540)}
        stats = live.stats()
        assert stats["viewers"] == 2 and stats["dropped_packets"] == 0
    finally:
        for viewer in viewers:
            await viewer.pc.close()
    # Viewers gone: the tap is removed, the camera's packets are no longer copied.
    deadline = time.monotonic() + 15
    while live.tapped_cameras() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert live.tapped_cameras() == [] and camera._packet_listeners == ()
    await live.close()


async def test_a_browser_without_h264_is_told_to_use_mjpeg(camera: CaptureSource) -> None:
    live = LiveVideo(Captures({"cam": camera}))
    viewer = Viewer(only="video/VP8")
    try:
        with pytest.raises(LiveError) as refused:
            await live.answer("cam", await viewer.offer(), "tester")
        assert refused.value.status == 415 and "MJPEG" in refused.value.reason
        assert live.tapped_cameras() == [] and live.stats()["viewers"] == 0
    finally:
        await viewer.pc.close()
        await live.close()


async def test_viewer_limit_and_unknown_codec_are_refused(camera: CaptureSource) -> None:
    live = LiveVideo(Captures({"cam": camera}), max_viewers=1)
    first, second = Viewer(), Viewer()
    try:
        await first.connect(live, "cam")
        with pytest.raises(LiveError) as full:
            await live.answer("cam", await second.offer(), "tester")
        assert full.value.status == 503
        camera.codec = "hevc"  # a camera browsers cannot play over WebRTC
        with pytest.raises(LiveError) as hevc:
            await live.answer("cam", await second.offer(), "tester")
        assert hevc.value.status == 409
    finally:
        await first.pc.close()
        await second.pc.close()
        await live.close()
    assert live.tapped_cameras() == []
