"""Capture thread per camera: FFmpeg (through PyAV), timeouts, reconnect with backoff.

Decoding is blocking C code, so it lives on its own thread. The thread keeps only the newest
frame in a one-slot mailbox: a slow consumer sees fresh frames and old ones are dropped, never
queued. The slot counts what it overwrote, which is the camera's skipped-frames figure.

A quiet camera needs no full decode: in keyframe mode only keyframes are decoded (each one
drained out of the decoder at once, so a stream with B-frames does not hold it back a whole
GOP), and the packets since the last keyframe are kept. Asked for full rate, the thread decodes
those kept packets first and so has the current picture at once, instead of waiting up to a
GOP for the next keyframe. Sequence numbers count the stream's frames in keyframe mode (they
jump by a GOP) and go on one by one from the keyframe once decoding is full again.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import av
import av.container
import av.error
import av.video.codeccontext
import numpy as np

from events.model import CameraState
from ingest.config import CameraSource
from ingest.frame import Frame
from ingest.probe import diagnose
from ingest.urls import mask_text, mask_url

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
FULL, KEYFRAMES = "full", "keyframes"
GOP_KEEP_MAX = 600  # packets kept for a catch-up: a camera whose GOP is longer waits for a key
# A connection decodes from its first keyframe (what comes before would be broken pictures:
# false motion, false tamper), unless none is flagged within this many packets (intra-refresh
# streams have no IDR): then from wherever it is.
KEY_WAIT_PACKETS = 150

# (one encoded access unit as the camera sent it, Annex-B for H.264; is it a keyframe)
PacketListener = Callable[[bytes, bool], None]
H264_SPS = 7


class CaptureSource:
    """Owns one camera's decode thread. `start()` / `stop()` from any thread."""

    def __init__(
        self,
        camera_id: str,
        source: CameraSource,
    ) -> None:
        self.camera_id = camera_id
        self.source = source
        self.url_masked = mask_url(source.url)
        self._lock = threading.Lock()
        # The newest decoded picture stays in FFmpeg's YUV until someone asks for it: most
        # frames are overwritten before any consumer looks (detect_fps < camera fps), and the
        # YUV -> BGR conversion is a large share of the decode cost.
        self._latest_raw: tuple[int, float, datetime, av.VideoFrame, bool] | None = None
        self._latest: Frame | None = None
        self._convert_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        # (monotonic time, seq, keyframe, stream time in s) of the latest decoded frames
        self._decoded_log: deque[tuple[float, int, bool, float | None]] = deque(maxlen=512)
        self._arrival_times: deque[float] = deque(maxlen=256)
        self._want_full = True  # set by the owner (any thread); the capture thread follows it
        self._mode = FULL
        self._packets = 0  # video packets (frames) received over this source's life
        self.decoded_total = 0
        self.catch_ups = 0  # switches to full rate that decoded the kept GOP
        self._key_pts: int | None = None  # the keyframe published last in keyframe mode
        self._state = CameraState.STARTING
        self.reconnects = 0
        self.attempts = 0
        self.last_error: str | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.codec: str | None = None
        self.last_frame_mono: float | None = None
        self._down_since: float | None = None  # when a camera that was online went down
        # Swapped whole, never mutated: the capture thread reads it without a lock.
        self._packet_listeners: tuple[PacketListener, ...] = ()
        self._parameter_sets = b""  # SPS/PPS from the SDP, for keyframes that lack them

    # ---- consumer side -------------------------------------------------------------------
    def latest(self) -> Frame | None:
        """The newest frame as BGR. Converts on first request: call it off the event loop."""
        with self._lock:
            raw, done = self._latest_raw, self._latest
        if raw is None:
            return None
        if done is not None and done.seq == raw[0]:
            return done
        with self._convert_lock:
            with self._lock:
                done = self._latest
            if done is not None and done.seq == raw[0]:
                return done  # another consumer converted it meanwhile
            seq, mono, at, picture, sparse = raw
            frame = Frame(
                self.camera_id,
                seq,
                mono,
                at,
                np.asarray(picture.to_ndarray(format="bgr24"), dtype=np.uint8),
                sparse,
            )
            with self._lock:
                if self._latest is None or self._latest.seq < seq:
                    self._latest = frame
            return frame

    @property
    def latest_seq(self) -> int:
        with self._lock:
            return self._latest_raw[0] if self._latest_raw is not None else 0

    @property
    def state(self) -> CameraState:
        """The camera's state as the rest of the system should see it.

        FFmpeg may retry a hung read several times before giving up, so an online camera whose
        newest frame is older than the read timeout is reported as reconnecting at once, even
        while the decode thread is still blocked inside OpenCV.
        """
        state = self._state
        if state == CameraState.ONLINE and self.last_frame_mono is not None:
            if time.monotonic() - self.last_frame_mono > self.source.read_timeout_s:
                return CameraState.RECONNECTING
        return state

    @property
    def stalled(self) -> bool:
        return self._state == CameraState.ONLINE and self.state != CameraState.ONLINE

    def input_fps(self, window_s: float = 5.0) -> float:
        """Frames per second the camera sends (decoded or not)."""
        with self._lock:
            times = list(self._arrival_times)
        return _rate(times, window_s)

    def decoded_fps(self, window_s: float = 5.0) -> float:
        """Frames per second decoded: the input rate at full rate, about 1/GOP on keyframes.
        Over a window of at least two GOPs, so keyframe mode reads steadily."""
        # Copied under the lock: the capture thread appends, and an iterator over a deque
        # made before the lock is taken fails on the next append (seen in a soak run).
        with self._lock:
            times = [entry[0] for entry in self._decoded_log]
        return _rate(times, window_s)

    # ---- decode mode ---------------------------------------------------------------------
    def set_full(self, full: bool) -> None:
        """Full-rate decoding (True) or keyframes only; the capture thread switches at its
        next packet, catching up on the current GOP when it goes to full rate."""
        self._want_full = full

    @property
    def decode_mode(self) -> str:
        return self._mode

    def decoded(self) -> list[tuple[int, bool, float | None]]:
        """The latest decoded frames: (seq, keyframe, stream time in seconds)."""
        with self._lock:
            return [entry[1:] for entry in self._decoded_log]

    # ---- encoded packets (live video relays them without decoding) ---------------------
    def add_packet_listener(self, listener: PacketListener) -> None:
        """Call `listener` on the capture thread with every video packet from now on. It
        must be quick and must not block: it runs between the camera and the decoder."""
        with self._lock:
            self._packet_listeners = (*self._packet_listeners, listener)

    def remove_packet_listener(self, listener: PacketListener) -> None:
        with self._lock:
            self._packet_listeners = tuple(f for f in self._packet_listeners if f != listener)

    def _relay(self, packet: av.Packet) -> None:
        listeners = self._packet_listeners
        if not listeners or not packet.size:
            return
        data = bytes(packet)
        keyframe = bool(packet.is_keyframe)
        if keyframe and self._parameter_sets and not _has_sps(data):
            # Cameras that send SPS/PPS only in the SDP: a viewer joining at this keyframe
            # needs them in-band.
            data = self._parameter_sets + data
        for listener in listeners:
            try:
                listener(data, keyframe)
            except Exception:  # a broken viewer must never stop the camera
                log.exception("camera=%s packet listener failed", self.camera_id)

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"capture-{self.camera_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- capture thread ------------------------------------------------------------------
    def _open(self) -> av.container.InputContainer:
        # PyAV, not cv2.VideoCapture: OpenCV's FFmpeg backend opens streams under one
        # process-wide lock, so a camera that hangs in open stalls every other camera's
        # (re)connect (measured: 14 s for a healthy camera behind one hung camera). PyAV
        # opens, reads and decodes with the GIL released and no shared lock.
        return av.open(
            self.source.url,
            # A short probe: a camera's SDP carries SPS/PPS, so one second of stream is plenty,
            # and FFmpeg's 5 s default would delay every (re)connect by seconds.
            options={
                "rtsp_transport": self.source.transport,
                "fflags": "nobuffer",
                "analyzeduration": "1000000",
                "probesize": "1000000",
            },
            timeout=(self.source.open_timeout_s, self.source.read_timeout_s),
        )

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stop.is_set():
            self.attempts += 1
            try:
                container = self._open()
            except (av.FFmpegError, OSError) as exc:
                reason = diagnose(self.source.url, min(self.source.open_timeout_s, 3.0))
                self._set_state(self._down_state(), f"cannot open: {reason}")
                log.debug("camera=%s open failed: %s", self.camera_id, mask_text(str(exc)))
            else:
                got_any, error = self._read_loop(container)
                if not self._stop.is_set():
                    if got_any:
                        backoff = BACKOFF_START_S
                        self._down_since = time.monotonic()
                    self.reconnects += 1
                    # Report before close(): closing a session with a hung server can itself
                    # take a timeout's worth of time.
                    self._set_state(self._down_state(), error)
                with contextlib.suppress(av.FFmpegError, OSError):
                    container.close()
                if self._stop.is_set():
                    break
            # Full jitter keeps 200 cameras behind one dead switch from reconnecting in lockstep.
            delay = random.uniform(0.5, 1.0) * backoff
            backoff = min(backoff * 2, self.source.reconnect_max_s)
            self._stop.wait(delay)
        self._set_state(CameraState.STOPPED, None)

    def _down_state(self) -> CameraState:
        """Never seen: offline at once. Was online: reconnecting, offline after a while."""
        if self._down_since is None:
            return CameraState.OFFLINE
        down_for = time.monotonic() - self._down_since
        return (
            CameraState.RECONNECTING
            if down_for < self.source.offline_after_s
            else CameraState.OFFLINE
        )

    def _read_loop(self, container: av.container.InputContainer) -> tuple[bool, str]:
        """Decode until the stream fails or we are stopped: (got any frame, why it ended)."""
        if not container.streams.video:
            return False, "the stream has no video track"
        stream = container.streams.video[0]
        self.codec = stream.codec_context.name
        extradata = stream.codec_context.extradata or b""
        # RTSP's H.264 extradata is Annex-B (from sprop-parameter-sets); avcC would start 0x01.
        annex_b = extradata.startswith((b"\0\0\1", b"\0\0\0\1"))
        self._parameter_sets = extradata if self.codec == "h264" and annex_b else b""
        ctx = stream.codec_context
        got_any = False
        # The packets since the last keyframe, with when each arrived: a catch-up decodes them.
        gop: list[tuple[av.Packet, float, datetime]] = []
        whole = False  # `gop` starts at a keyframe and nothing since is missing
        seen_key = False  # on this connection (keyframe mode needs one)
        self._key_pts = None
        opened_at, decoded_at = self._packets, self.decoded_total
        try:
            for packet in container.demux(stream):
                if self._stop.is_set():
                    break
                self._relay(packet)
                if packet.size:
                    arrived = (packet, *self._now())
                    self._packets += 1
                    with self._lock:
                        self._arrival_times.append(arrived[1])
                        self.last_frame_mono = arrived[1]
                    if packet.is_keyframe:
                        gop, whole, seen_key = [arrived], True, True
                    elif whole and len(gop) < GOP_KEEP_MAX:
                        gop.append(arrived)
                    else:
                        gop, whole = [], False  # too long to keep: full rate waits for a key
                if not seen_key and self._packets - opened_at < KEY_WAIT_PACKETS:
                    continue  # before the first keyframe a decoder only makes broken pictures
                if self._mode == FULL and (self._want_full or not seen_key):
                    for decoded in ctx.decode(packet):
                        self._publish(decoded, self._now())  # type: ignore[arg-type]
                elif self._want_full:  # keyframes -> full rate
                    if whole:
                        self._catch_up(ctx, gop)  # the kept GOP ends with this packet
                        self._mode = FULL
                else:
                    self._mode = KEYFRAMES
                    if packet.is_keyframe and packet.size:
                        # Drained at once and the decoder reset: a keyframe needs nothing
                        # else, and with B-frames the decoder would hold it a whole GOP.
                        frames = [*ctx.decode(packet), *ctx.decode(None)]
                        ctx.flush_buffers()
                        for decoded in frames:  # (with B-frames, older ones drain out first)
                            if decoded.key_frame:  # type: ignore[union-attr]
                                # A drained frame may come without its clock.
                                if decoded.pts is None:  # type: ignore[union-attr]
                                    decoded.pts = packet.pts  # type: ignore[union-attr]
                                if decoded.time_base is None:  # type: ignore[union-attr]
                                    decoded.time_base = packet.time_base  # type: ignore[union-attr]
                                self._publish(decoded, gop[0][1:], seq=self._packets)  # type: ignore[arg-type]
                        self._key_pts = packet.pts
                if not got_any and self.decoded_total > decoded_at:
                    got_any = True
                    self._set_state(CameraState.ONLINE, None)
        except av.error.ExitError:  # the read timeout's interrupt
            return got_any, "no data within the read timeout"
        except (av.FFmpegError, OSError) as exc:
            return got_any, f"stream error: {mask_text(str(exc))}"
        return got_any, "stream ended"

    @staticmethod
    def _now() -> tuple[float, datetime]:
        return time.monotonic(), datetime.now(UTC)

    def _catch_up(
        self,
        ctx: av.video.codeccontext.VideoCodecContext,
        gop: list[tuple[av.Packet, float, datetime]],
    ) -> None:
        """From keyframes to full rate: decode the kept GOP from its keyframe (the decoder was
        reset after it) and publish what comes after the keyframe already published, each
        frame with the time its packet arrived."""
        self.catch_ups += 1
        when = {p.pts: (mono, at) for p, mono, at in gop if p.pts is not None}
        done = self._key_pts
        for packet, _, _ in gop:
            for decoded in ctx.decode(packet):
                pts = decoded.pts  # type: ignore[union-attr]
                if pts is not None and done is not None and pts <= done:
                    continue
                self._publish(decoded, when.get(pts) or self._now())  # type: ignore[arg-type]

    def _publish(
        self, picture: av.VideoFrame, when: tuple[float, datetime], seq: int | None = None
    ) -> None:
        """`when`: the frame's arrival (monotonic, UTC). `seq`: the stream's frame number
        (keyframe mode); otherwise the next number."""
        mono, at = when
        with self._lock:
            self._seq = max(self._seq + 1, seq or 0)
            self._latest_raw = (self._seq, mono, at, picture, seq is not None)
            pts = picture.pts
            stream_s = (
                float(pts * picture.time_base) if pts is not None and picture.time_base else None
            )
            self._decoded_log.append(
                (time.monotonic(), self._seq, bool(picture.key_frame), stream_s)
            )
            self.decoded_total += 1
        self.width, self.height = picture.width, picture.height

    def _set_state(self, state: CameraState, error: str | None) -> None:
        if error is not None:
            error = mask_text(error)
        if state != self._state or error != self.last_error:
            level = (
                logging.WARNING
                if state in (CameraState.OFFLINE, CameraState.RECONNECTING)
                else logging.INFO
            )
            log.log(
                level,
                "camera=%s state=%s url=%s%s",
                self.camera_id,
                state,
                self.url_masked,
                f" error={error}" if error else "",
            )
        self._state = state
        self.last_error = error


def _has_sps(access_unit: bytes) -> bool:
    """Does an Annex-B H.264 access unit carry a sequence parameter set?"""
    start = access_unit.find(b"\0\0\1")
    while start != -1 and start + 3 < len(access_unit):
        if access_unit[start + 3] & 0x1F == H264_SPS:
            return True
        start = access_unit.find(b"\0\0\1", start + 3)
    return False


def _rate(times: list[float], window_s: float) -> float:
    """Events per second over the last `window_s` of monotonic `times` (oldest first)."""
    now = time.monotonic()
    recent = [t for t in times if now - t <= window_s]
    if len(recent) < 2:
        return 0.0
    span = now - recent[0] if len(recent) < 4 else recent[-1] - recent[0]
    return (len(recent) - 1) / span if span > 0 else 0.0
