"""A camera's own zone-state classifier (kering / tergenang / banjir, any names), trained on the
box from the operators' labelled crops, with no weights from anywhere.

Why this shape: a fixed camera watching a known hotspot sees the same place every day, so the
question is "which of the looks we were shown is this?", not "what is water?". Colour
statistics (HSV histograms inside the zone), texture (gradient orientations and strength, edge
density, a coarse 8x8 picture) carry what changes when water covers a floor or an asphalt road;
a multinomial logistic regression on them trains in well under a second on the CPU from a few
dozen labels, predicts in about a millisecond, and its probabilities are what the state rule's
`min_probability` and hysteresis work on. Augmentation (brightness, contrast, noise, shifts,
blur) stands in for the lighting a handful of labels does not cover.

Accuracy is reported on a time split before anyone enables a model: per state, the latest
quarter of its labels is held back and never trained on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from analytics.config import Zone
from analytics.zones import ZoneShape

SIDE = 96  # crops are resized to this square before features
FEATURES_VERSION = 1
Image = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float64]


# ---- the crop and its features -------------------------------------------------------------
def zone_box(frame: Image, zone: Zone) -> tuple[Image, Floats]:
    """The zone's bounding box cut out of the frame, and the polygon in the box's pixels."""
    h, w = frame.shape[:2]
    poly = ZoneShape.for_frame(zone, w, h).polygon.reshape(-1, 2)
    x0, y0 = np.floor(poly.min(axis=0)).astype(int).clip(0, [w - 1, h - 1])
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int).clip(1, [w, h])
    return frame[y0:y1, x0:x1], np.asarray(poly - [x0, y0], np.float64)


def to_side(box: Image, polygon: Floats) -> tuple[Image, npt.NDArray[np.uint8]]:
    """A zone's box resized to SIDE x SIDE, and the polygon's mask at that size."""
    mask = np.zeros(box.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 255)
    patch = np.asarray(cv2.resize(box, (SIDE, SIDE), interpolation=cv2.INTER_AREA), np.uint8)
    shape = np.asarray(cv2.resize(mask, (SIDE, SIDE), interpolation=cv2.INTER_NEAREST), np.uint8)
    return patch, shape


def crop(frame: Image, zone: Zone) -> tuple[Image, npt.NDArray[np.uint8]]:
    """The zone's bounding box, resized to SIDE x SIDE, and the polygon's mask in it."""
    return to_side(*zone_box(frame, zone))


def features(patch: Image, mask: npt.NDArray[np.uint8]) -> Floats:
    inside = mask > 0
    weight = inside.astype(np.float32)
    hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV)
    parts: list[Floats] = []
    for channel, bins, top in ((0, 16, 180), (1, 8, 256), (2, 8, 256)):
        hist = cv2.calcHist([hsv], [channel], mask, [bins], [0, top]).ravel()
        parts.append(hist / max(hist.sum(), 1.0))
    gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    magnitude, angle = cv2.cartToPolar(gx, gy, angleInDegrees=True)
    magnitude *= weight
    orient, _ = np.histogram(angle % 180, bins=8, range=(0, 180), weights=magnitude)
    parts.append(orient / max(orient.sum(), 1e-6))
    strength, _ = np.histogram(magnitude[inside], bins=8, range=(0, 400))
    parts.append(strength / max(strength.sum(), 1))
    edges = cv2.Canny(patch, 60, 160)
    values = hsv[..., 2][inside].astype(np.float64) / 255
    sats = hsv[..., 1][inside].astype(np.float64) / 255
    parts.append(np.array([
        (edges[inside] > 0).mean() if inside.any() else 0.0,
        values.mean() if values.size else 0.0, values.std() if values.size else 0.0,
        sats.mean() if sats.size else 0.0, sats.std() if sats.size else 0.0,
    ]))  # fmt: skip
    small = cv2.resize(np.where(inside, gray, gray[inside].mean() if inside.any() else 0),
                       (8, 8), interpolation=cv2.INTER_AREA).ravel()  # fmt: skip
    parts.append((small - small.mean()) / (small.std() + 1e-6) / 8)
    return np.concatenate(parts).astype(np.float64)


def augment(patch: Image, rng: np.random.Generator, n: int) -> list[Image]:
    """`n` variants of a crop under other light and small camera shakes."""
    out = []
    for _ in range(n):
        img = patch.astype(np.float32)
        img = img * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)  # brightness
        mean = img.mean()
        img = (img - mean) * rng.uniform(0.8, 1.2) + mean  # contrast
        img += rng.normal(0, rng.uniform(0, 6), img.shape)  # sensor noise
        dx, dy = rng.integers(-4, 5, size=2)
        shift = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
        img = np.asarray(cv2.warpAffine(img, shift, (SIDE, SIDE),
                                        borderMode=cv2.BORDER_REFLECT), np.float32)  # fmt: skip
        if rng.random() < 0.3:
            img = np.asarray(cv2.GaussianBlur(img, (3, 3), 0), np.float32)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


# ---- the classifier ------------------------------------------------------------------------
@dataclass
class Evaluation:
    accuracy: float | None  # on the held-back later labels; None when too few to hold back
    per_state: dict[str, float | None]
    held_back: dict[str, int]
    trained_on: dict[str, int]


@dataclass
class StateModel:
    camera_id: str
    zone_id: str
    states: list[str]
    weights: Floats  # (features, states)
    bias: Floats  # (states,)
    mean: Floats
    scale: Floats
    version: int = 1
    trained_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    evaluation: Evaluation | None = None

    def probabilities(self, frame: Image, zone: Zone) -> dict[str, float]:
        patch, mask = crop(frame, zone)
        return dict(zip(self.states, self._proba(features(patch, mask)[None, :])[0], strict=True))

    def _proba(self, x: Floats) -> Floats:
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    # files: <folder>/<camera>/<zone>/v<N>.npz with a JSON of the facts beside it
    def save(self, folder: Path) -> Path:
        where = folder / self.camera_id / self.zone_id
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"v{self.version}.npz"
        np.savez(path, weights=self.weights, bias=self.bias, mean=self.mean, scale=self.scale)
        meta = {"camera_id": self.camera_id, "zone_id": self.zone_id, "states": self.states,
                "version": self.version, "trained_at": self.trained_at,
                "features": FEATURES_VERSION,
                "evaluation": asdict(self.evaluation) if self.evaluation else None}  # fmt: skip
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> StateModel:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if meta.get("features") != FEATURES_VERSION:
            raise ValueError(f"{path}: made with features v{meta.get('features')}, retrain it")
        arrays = np.load(path)
        ev = meta.get("evaluation")
        return cls(meta["camera_id"], meta["zone_id"], list(meta["states"]), arrays["weights"],
                   arrays["bias"], arrays["mean"], arrays["scale"], int(meta["version"]),
                   meta["trained_at"], Evaluation(**ev) if ev else None)  # fmt: skip


def enable(folder: Path, camera_id: str, zone_id: str, version: int) -> None:
    """Let rules use this version (after its accuracy was looked at): an `enabled` file."""
    where = folder / camera_id / zone_id
    if not (where / f"v{version}.npz").is_file():
        raise FileNotFoundError(f"no model v{version} for camera {camera_id} zone {zone_id}")
    (where / "enabled").write_text(str(version), encoding="utf-8")


def disable(folder: Path, camera_id: str, zone_id: str) -> None:
    (folder / camera_id / zone_id / "enabled").unlink(missing_ok=True)


def enabled(folder: Path | None, camera_id: str, zone_id: str) -> StateModel | None:
    """The enabled model of a camera's zone, or None (then rules use the classical method)."""
    if folder is None:
        return None
    pointer = folder / camera_id / zone_id / "enabled"
    if not pointer.is_file():
        return None
    version = pointer.read_text(encoding="utf-8").strip()
    return StateModel.load(folder / camera_id / zone_id / f"v{version}.npz")


def next_version(folder: Path, camera_id: str, zone_id: str) -> int:
    where = folder / camera_id / zone_id
    found = [int(p.stem[1:]) for p in where.glob("v*.npz") if p.stem[1:].isdigit()]
    return max(found, default=0) + 1


@dataclass(frozen=True)
class Label:
    state: str
    at: float  # when the picture was taken (seconds, any epoch): the time split sorts by it
    patch: Image  # the zone crop, SIDE x SIDE
    mask: npt.NDArray[np.uint8]


def _fit(x: Floats, y: npt.NDArray[np.int64], k: int, l2: float = 1e-3,
         steps: int = 600, rate: float = 0.5) -> tuple[Floats, Floats]:  # fmt: skip
    """Multinomial logistic regression by full-batch gradient descent (small data: exact
    enough, and no library to install)."""
    n, d = x.shape
    w, b = np.zeros((d, k)), np.zeros(k)
    onehot = np.eye(k)[y]
    counts = np.bincount(y, minlength=k).astype(np.float64)
    balance = (n / (k * np.maximum(counts, 1)))[y][:, None]  # rare states weigh as much
    for _ in range(steps):
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * balance / n
        w -= rate * (x.T @ g + l2 * w)
        b -= rate * g.sum(axis=0)
    return w, b


def train(
    labels: list[Label], camera_id: str, zone_id: str, *, hold_back: float = 0.25,
    copies: int = 8, seed: int = 0, version: int = 1,
) -> StateModel:  # fmt: skip
    """Train on the earlier labels of each state, evaluate on the later ones, then train the
    model that is kept on all of them."""
    states = sorted({lab.state for lab in labels})
    if len(states) < 2:
        raise ValueError("label at least two states (e.g. kering and banjir)")
    rng = np.random.default_rng(seed)
    train_set, test_set = [], []
    for state in states:
        mine = sorted((lab for lab in labels if lab.state == state), key=lambda lab: lab.at)
        cut = len(mine) - int(len(mine) * hold_back) if len(mine) >= 4 else len(mine)
        train_set += mine[:cut]
        test_set += mine[cut:]

    def fit(chosen: list[Label]) -> tuple[Floats, Floats, Floats, Floats]:
        rows, ys = [], []
        for lab in chosen:
            for img in [lab.patch, *augment(lab.patch, rng, copies)]:
                rows.append(features(img, lab.mask))
                ys.append(states.index(lab.state))
        x = np.stack(rows)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        w, b = _fit((x - mean) / scale, np.array(ys), len(states))
        return w, b, mean, scale

    evaluation = None
    if test_set:
        w, b, mean, scale = fit(train_set)
        probe = StateModel(camera_id, zone_id, states, w, b, mean, scale)
        got = probe._proba(np.stack([features(lab.patch, lab.mask) for lab in test_set]))
        right = [states[int(i)] == lab.state for i, lab in zip(got.argmax(axis=1), test_set,
                                                                  strict=True)]  # fmt: skip
        per_state: dict[str, float | None] = {}
        for state in states:
            hits = [r for r, lab in zip(right, test_set, strict=True) if lab.state == state]
            per_state[state] = round(sum(hits) / len(hits), 4) if hits else None
        evaluation = Evaluation(
            round(sum(right) / len(right), 4), per_state,
            {s: sum(lab.state == s for lab in test_set) for s in states},
            {s: sum(lab.state == s for lab in train_set) for s in states},
        )  # fmt: skip
    w, b, mean, scale = fit(labels)
    return StateModel(camera_id, zone_id, states, w, b, mean, scale, version,
                      evaluation=evaluation)  # fmt: skip
