"""Synthetic scenes: coloured shapes that move, bounce, appear and vanish, rendered with numpy only.

The renderer is the ground truth: the per-frame visible masks it returns (after occlusion by objects drawn
above) are exactly the pixels painted in the object's colour, so every mask, span and answer is known exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Well separated hues on dark backgrounds, so the colour survives H.264 4:2:0 chroma subsampling.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 70),
    "blue": (50, 100, 235),
    "yellow": (235, 215, 50),
    "purple": (160, 70, 210),
    "orange": (245, 140, 30),
}
SHAPES = ("circle", "square", "triangle", "star", "cross")
SIZES = ("small", "large")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (14, 14, 14),
    "dark grey": (52, 52, 52),
    "grey": (92, 92, 92),
    "brown": (72, 52, 36),
}
TEXTURES = ("plain", "checked", "striped", "noisy")
# Unit steps in image coordinates (y grows downwards), named as the language layer describes them.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "up-left": (-math.sqrt(0.5), -math.sqrt(0.5)),
    "up-right": (math.sqrt(0.5), -math.sqrt(0.5)),
    "down-left": (-math.sqrt(0.5), math.sqrt(0.5)),
    "down-right": (math.sqrt(0.5), math.sqrt(0.5)),
}
BOUNCE_AXES = ("horizontal", "vertical")
PRESENCES = ("full", "enters", "leaves", "brief")

MIN_VISIBLE_FRACTION = 0.35  # an object is never hidden more than this by occlusion, so spans equal visibility
MAX_ATTEMPTS = 64


@dataclass(eq=False)
class SceneObject:
    """One shape; `path[t]` is its integer centre (x, y) on frame t, meaningful for `start <= t <= end`."""

    index: int
    shape: str
    colour: str
    size: str
    radius: float
    rgb: tuple[int, int, int]
    start: int
    end: int
    motion: str
    direction: str  # a DIRECTIONS key (linear), a BOUNCE_AXES entry (bounce) or "" (still)
    path: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    def presence(self, num_frames: int) -> str:
        """How the object's lifetime sits in the video: one of PRESENCES."""
        late, early = self.start > 0, self.end < num_frames - 1
        return {(False, False): "full", (True, False): "enters", (False, True): "leaves"}.get((late, early), "brief")


@dataclass(eq=False)
class Scene:
    """A whole synthetic video: background, objects in z order (later ones drawn on top) and visible masks."""

    seed: int
    index: int
    width: int
    height: int
    num_frames: int
    fps: int
    background: str
    texture: str
    canvas: np.ndarray  # (H, W, 3) uint8 background
    objects: list[SceneObject]
    masks: np.ndarray  # (N, T, H, W) bool, visible part of each object on each frame

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def visible_frames(self, obj: SceneObject) -> list[int]:
        return [int(t) for t in np.flatnonzero(self.masks[obj.index].any(axis=(1, 2)))]


def _polygon(dx: np.ndarray, dy: np.ndarray, vertices: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd point-in-polygon test at pixel centres, vectorised over the template grid."""
    inside = np.zeros(dx.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(vertices, vertices[1:] + vertices[:1]):
        crosses = (y0 > dy) != (y1 > dy)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (dy - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (dx < x_at)
    return inside


def shape_template(shape: str, radius: float) -> np.ndarray:
    """Boolean (2R+1, 2R+1) mask of a shape centred on the middle pixel."""
    half = int(math.ceil(radius)) + 1
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    r = radius
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        side = 0.85 * r
        return (np.abs(dx) <= side) & (np.abs(dy) <= side)
    if shape == "triangle":
        tri = [(0.0, -r), (r * 0.95, r * 0.75), (-r * 0.95, r * 0.75)]
        return _polygon(dx, dy, tri)
    if shape == "star":
        points = []
        for k in range(10):
            rad = r if k % 2 == 0 else 0.45 * r
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((rad * math.cos(angle), rad * math.sin(angle)))
        return _polygon(dx, dy, points)
    if shape == "cross":
        arm = 0.33 * r
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    raise ValueError(f"unknown shape {shape!r}; allowed: {', '.join(SHAPES)}")


def _background(rng: np.random.Generator, height: int, width: int) -> tuple[str, str, np.ndarray]:
    name = str(rng.choice(list(BACKGROUNDS)))
    texture = str(rng.choice(TEXTURES))
    base = np.array(BACKGROUNDS[name], dtype=np.int16)
    yy, xx = np.mgrid[0:height, 0:width]
    if texture == "checked":
        delta = np.where(((yy // 16) + (xx // 16)) % 2 == 0, 12, -12)[..., None]
    elif texture == "striped":
        delta = np.where((xx // 8) % 2 == 0, 10, -10)[..., None]
    elif texture == "noisy":
        delta = rng.integers(-8, 9, size=(height, width, 1))
    else:
        delta = np.zeros((height, width, 1), dtype=np.int16)
    canvas = np.clip(base + delta, 0, 255).astype(np.uint8)
    return name, texture, canvas


def _lifetime(rng: np.random.Generator, num_frames: int, presence: str) -> tuple[int, int]:
    """First and last frame (inclusive) for a presence kind; every lifetime spans at least a quarter of the video."""
    t, margin = num_frames, max(2, num_frames // 8)
    min_life = max(8, t // 4)
    if presence == "enters":
        start = int(rng.integers(margin, t - min_life + 1))
        return start, t - 1
    if presence == "leaves":
        end = int(rng.integers(min_life - 1, t - margin))
        return 0, end
    if presence == "brief":
        start = int(rng.integers(margin, t - min_life - margin + 1))
        end = int(rng.integers(start + min_life - 1, t - margin))
        return start, end
    return 0, t - 1


def _linear_path(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, life: int) -> tuple[str, np.ndarray]:
    direction = str(rng.choice(list(DIRECTIONS)))
    unit = np.array(DIRECTIONS[direction])
    speed = float(rng.uniform(1.3, 2.6))
    steps = max(life - 1, 1)
    with np.errstate(divide="ignore"):
        limit = np.where(unit != 0, (hi - lo) / np.abs(unit) / steps, np.inf)
    speed = min(speed, float(limit.min()))
    travel = unit * speed * steps
    start = np.array([rng.uniform(lo[i] - min(0.0, travel[i]), hi[i] - max(0.0, travel[i])) for i in range(2)])
    offsets = np.arange(life)[:, None] * (unit * speed)[None, :]
    return direction, start[None, :] + offsets


def _bounce_path(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, life: int) -> tuple[str, np.ndarray]:
    """Motion along one axis, reflected at the walls; the speed guarantees at least one bounce."""
    axis_name = str(rng.choice(BOUNCE_AXES))
    axis = 0 if axis_name == "horizontal" else 1
    start = np.array([rng.uniform(lo[i], hi[i]) for i in range(2)])
    sign = 1.0 if rng.random() < 0.5 else -1.0
    to_wall = (hi[axis] - start[axis]) if sign > 0 else (start[axis] - lo[axis])
    speed = max(float(rng.uniform(3.0, 5.0)), (to_wall + 4.0) / max(life - 1, 1))
    span = hi[axis] - lo[axis]
    unfolded = (start[axis] - lo[axis]) + sign * speed * np.arange(life)
    folded = np.mod(unfolded, 2 * span)
    folded = np.where(folded > span, 2 * span - folded, folded)
    path = np.repeat(start[None, :], life, axis=0)
    path[:, axis] = lo[axis] + folded
    return axis_name, path


def _sample_object(
    rng: np.random.Generator, index: int, colour: str, shape: str, presence: str, width: int, height: int, frames: int
) -> SceneObject:
    scale = min(width, height) / 128.0
    size = str(rng.choice(SIZES))
    radius = float(rng.uniform(6.0, 8.5) if size == "small" else rng.uniform(12.0, 15.0)) * scale
    start, end = _lifetime(rng, frames, presence)
    life = end - start + 1
    margin = math.ceil(radius) + 1
    lo, hi = np.array([margin, margin], dtype=float), np.array([width - 1 - margin, height - 1 - margin], dtype=float)
    roll = rng.random()
    if roll < 0.2:
        motion, direction = "still", ""
        path = np.repeat(np.array([[rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1])]]), life, axis=0)
    elif roll < 0.75 or life < 16:
        motion = "linear"
        direction, path = _linear_path(rng, lo, hi, life)
    else:
        motion = "bounce"
        direction, path = _bounce_path(rng, lo, hi, life)
    full = np.zeros((frames, 2), dtype=np.int64)
    full[start : end + 1] = np.rint(path).astype(np.int64)
    full[:start], full[end + 1 :] = full[start], full[end]
    red, green, blue = (int(v) for v in np.clip(np.array(COLOURS[colour]) + rng.integers(-12, 13, size=3), 0, 255))
    return SceneObject(index, shape, colour, size, radius, (red, green, blue), start, end, motion, direction, full)


def _sample_objects(rng: np.random.Generator, width: int, height: int, frames: int) -> list[SceneObject]:
    """2-4 objects with unique (colour, shape); shapes or colours may repeat, which makes distractors."""
    count = int(rng.integers(2, 5))
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        pair = (str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)))
        if pair not in pairs:
            pairs.append(pair)
    presences = [str(rng.choice(PRESENCES, p=[0.5, 0.2, 0.2, 0.1])) for _ in pairs]
    if all(p == "full" for p in presences):  # every video has a time span worth grounding
        presences[int(rng.integers(count))] = str(rng.choice(PRESENCES[1:]))
    return [
        _sample_object(rng, i, colour, shape, presences[i], width, height, frames)
        for i, (colour, shape) in enumerate(pairs)
    ]


def full_masks(obj: SceneObject, width: int, height: int, frames: int) -> np.ndarray:
    """(T, H, W) bool: the object's whole shape on each frame of its lifetime, before occlusion."""
    template = shape_template(obj.shape, obj.radius)
    half = template.shape[0] // 2
    out = np.zeros((frames, height, width), dtype=bool)
    for t in range(obj.start, obj.end + 1):
        cx, cy = (int(v) for v in obj.path[t])
        y0, x0 = cy - half, cx - half
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(height, y0 + template.shape[0]), min(width, x0 + template.shape[1])
        out[t, ys:ye, xs:xe] = template[ys - y0 : ye - y0, xs - x0 : xe - x0]
    return out


def visible_masks(objects: list[SceneObject], width: int, height: int, frames: int) -> np.ndarray:
    """(N, T, H, W) bool: what remains of each object after every object above it (higher z) is drawn."""
    full = np.stack([full_masks(o, width, height, frames) for o in objects])
    covered = np.zeros((frames, height, width), dtype=bool)
    visible = np.empty_like(full)
    for i in range(len(objects) - 1, -1, -1):
        visible[i] = full[i] & ~covered
        covered |= full[i]
    return visible


def _occlusion_ok(objects: list[SceneObject], visible: np.ndarray) -> bool:
    for obj in objects:
        area = shape_template(obj.shape, obj.radius).sum()
        life = visible[obj.index, obj.start : obj.end + 1].sum(axis=(1, 2))
        if life.min() < MIN_VISIBLE_FRACTION * area:
            return False
    return True


def scene_rngs(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent (scene, text) generators per video, so a video never depends on how many others are made."""
    scene_seq, text_seq = np.random.SeedSequence([int(seed), int(index)]).spawn(2)
    return np.random.default_rng(scene_seq), np.random.default_rng(text_seq)


def make_scene(
    seed: int, index: int, *, width: int = 128, height: int = 128, num_frames: int = 40, fps: int = 8
) -> Scene:
    """Sample scene `index` of dataset `seed`, resampling until no object is ever mostly hidden."""
    rng, _ = scene_rngs(seed, index)
    background, texture, canvas = _background(rng, height, width)
    for _ in range(MAX_ATTEMPTS):
        objects = _sample_objects(rng, width, height, num_frames)
        visible = visible_masks(objects, width, height, num_frames)
        if _occlusion_ok(objects, visible):
            break
    else:
        objects = objects[:1]  # one object can never be occluded; reached only with extreme configs
        visible = visible_masks(objects, width, height, num_frames)
    return Scene(seed, index, width, height, num_frames, fps, background, texture, canvas, objects, visible)


def render_frames(scene: Scene) -> np.ndarray:
    """(T, H, W, 3) uint8 frames; painting visible masks in any order equals painting full shapes by z."""
    frames = np.repeat(scene.canvas[None], scene.num_frames, axis=0)
    for obj in scene.objects:
        frames[scene.masks[obj.index]] = obj.rgb
    return frames
