// One video tile's stream: WebRTC (the camera's own H.264, relayed), MJPEG when WebRTC cannot
// be had, or a still refreshed slowly when nothing happens on the camera (smart streaming).
//
// The tile always keeps its <img> showing something until the <video> really plays, so a tile
// never goes black while it switches.

const LIVE_TIMEOUT_MS = 10000;   // offer -> first picture; slower than this: use MJPEG
const RETRY_WEBRTC_MS = 30000;   // after a failure, try WebRTC again this much later
const HOLD_LIVE_MS = 20000;      // a tile that went quiet stays live this long (no flapping)
const DISCONNECTED_MS = 5000;    // a peer connection "disconnected" this long has failed

function gathered(pc, ms) {
  // Non-trickle: the server answers one offer that already holds every candidate.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms);
  });
}

export class TileStream {
  constructor(tile, cameraId, { idleRefreshS = 10 } = {}) {
    this.tile = tile;
    this.id = encodeURIComponent(cameraId);
    this.idleRefreshMs = idleRefreshS * 1000;
    this.img = tile.querySelector("img");
    this.video = tile.querySelector("video");
    this.mode = "off";          // what was asked: live | idle | off
    this.pc = null;
    this.noWebrtc = false;      // the server said this camera/browser cannot do WebRTC
    this.retryAt = 0;
    this.stillTimer = null;
    this.liveSince = 0;
    // A failed picture (no frame yet, camera on no box) shows nothing, not a broken icon.
    this.img.addEventListener("error", () => { this.img.classList.add("broken"); this.imgFailed(); });
    this.img.addEventListener("load", () => this.img.classList.remove("broken"));
    this.video.addEventListener("playing", () => {
      if (this.pc) this.show("webrtc");
    });
  }

  // live: play video now. idle: a still every idleRefresh. off: nothing (grid hidden).
  want(mode) {
    if (mode === "idle" && this.mode === "live" && Date.now() - this.liveSince < HOLD_LIVE_MS) return;
    if (mode === this.mode && !(mode === "live" && !this.pc && this.canTryWebrtc())) return;
    this.mode = mode;
    if (mode === "live") this.goLive();
    else if (mode === "idle") this.goIdle();
    else this.stopAll();
  }

  // The camera's source changed (another worker holds it now): start this mode over.
  restart() {
    const mode = this.mode;
    this.closePc();
    this.retryAt = 0;
    this.mode = "off";
    if (mode === "live" && this.tile.dataset.mode === "mjpeg") this.setImg("");
    this.want(mode);
  }

  canTryWebrtc() {
    return !this.noWebrtc && typeof RTCPeerConnection !== "undefined" && Date.now() >= this.retryAt;
  }

  show(kind) {
    this.tile.dataset.mode = kind;
    // The video is never hidden: Chromium does not autoplay (nor play) a video that is not
    // rendered, so it sits under the picture until it plays, and the picture goes.
    this.img.hidden = kind === "webrtc";
    if (kind === "webrtc") this.setImg("");  // end the MJPEG request: one stream per tile
  }

  setImg(src) {
    if (this.img.getAttribute("src") !== src) {
      if (src) this.img.setAttribute("src", src); else this.img.removeAttribute("src");
    }
  }

  goLive() {
    clearInterval(this.stillTimer);
    this.stillTimer = null;
    this.liveSince = Date.now();
    if (this.canTryWebrtc()) {
      if (!this.pc) this.startWebrtc();
    } else if (this.tile.dataset.mode !== "webrtc") {
      this.mjpeg();
    }
  }

  mjpeg() {
    this.setImg(`/api/cameras/${this.id}/mjpeg`);
    this.show("mjpeg");
  }

  goIdle() {
    this.closePc();
    this.still();
    clearInterval(this.stillTimer);
    this.stillTimer = setInterval(() => this.still(), this.idleRefreshMs);
  }

  still() {
    this.setImg(`/api/cameras/${this.id}/frame.jpg?t=${Date.now()}`);
    this.show("still");
  }

  stopAll() {
    this.closePc();
    clearInterval(this.stillTimer);
    this.stillTimer = null;
    this.setImg("");
    this.tile.dataset.mode = "off";
  }

  imgFailed() {
    // No frame yet (503) or the stream broke: try again shortly, in whatever mode we are.
    if (this.mode === "off") return;
    setTimeout(() => {
      if (this.mode === "idle") this.still();
      else if (this.mode === "live" && this.tile.dataset.mode === "mjpeg") {
        this.setImg(`/api/cameras/${this.id}/mjpeg?r=${Date.now()}`);
      }
    }, 3000);
  }

  closePc() {
    if (this.pc) { this.pc.close(); this.pc = null; }
    this.video.srcObject = null;
  }

  async startWebrtc() {
    const pc = new RTCPeerConnection();
    this.pc = pc;
    if (this.tile.dataset.mode !== "mjpeg") this.still();  // a picture while it connects
    const fail = (permanent) => {
      if (this.pc !== pc) return;
      this.closePc();
      if (permanent) this.noWebrtc = true; else this.retryAt = Date.now() + RETRY_WEBRTC_MS;
      if (this.mode === "live") this.mjpeg();
    };
    try {
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.addEventListener("track", (e) => {
        this.video.srcObject = new MediaStream([e.track]);
        // Muted video may autoplay on a browser as it comes; play() says so either way. If it
        // is refused (a stricter policy), the tile shows MJPEG and tries WebRTC again later.
        this.video.play().catch((err) => { if (err.name === "NotAllowedError") fail(false); });
      });
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "failed") fail(false);
        // "disconnected" turns "failed" only after ~30 s of ICE consent checks: the box that
        // sent the video is gone or cut off, so show MJPEG (or stills) well before that.
        if (pc.connectionState === "disconnected") {
          setTimeout(() => { if (pc.connectionState === "disconnected") fail(false); }, DISCONNECTED_MS);
        }
      });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, 2000);
      const res = await fetch(`/api/cameras/${this.id}/webrtc`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }),
      });
      // 404 (not enabled), 409 (camera codec), 415 (browser codec): MJPEG for good.
      if (!res.ok) { fail([404, 409, 415].includes(res.status)); return; }
      await pc.setRemoteDescription(await res.json());
      setTimeout(() => { if (this.pc === pc && this.tile.dataset.mode !== "webrtc") fail(false); },
        LIVE_TIMEOUT_MS);
    } catch (e) {
      fail(false);
    }
  }
}
