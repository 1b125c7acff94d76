"""Kinect-v2-like camera pairs and the renderer of the body into a masked depth map and a cluttered RGB frame.

Reference grids are those of the real sensor (depth 512x424, colour 1920x1080): skeleton files store
depthX/depthY and colorX/colorY in these grids, exactly like NTU, whatever the size of the written images.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from modistill.data.align import COLOR_REF, DEPTH_REF
from modistill.synthetic import body as B

DEPTH_F = 365.5  # focal length in depth reference pixels (about 70 x 60 degrees)
COLOR_F = 1081.4  # focal length in colour reference pixels (about 84 x 53 degrees)
BASELINE = 0.052  # metres between the depth and the colour camera centres
SHIFT = 4  # sub-pixel bits for cv2 drawing
CAMERA_YAW = {1: -45.0, 2: 0.0, 3: 45.0}

# (joint a, joint b, radius in metres, part) drawn as capsules.
SEGMENTS = (
    (B.SPINE_BASE, B.SPINE_SH, 0.12, "shirt"),
    (B.SH_L, B.SH_R, 0.06, "shirt"),
    (B.HIP_L, B.HIP_R, 0.08, "pants"),
    (B.SPINE_SH, B.NECK, 0.045, "skin"),
    (B.SH_L, B.EL_L, 0.045, "shirt"),
    (B.EL_L, B.WR_L, 0.038, "sleeve"),
    (B.WR_L, B.TIP_L, 0.033, "skin"),
    (B.SH_R, B.EL_R, 0.045, "shirt"),
    (B.EL_R, B.WR_R, 0.038, "sleeve"),
    (B.WR_R, B.TIP_R, 0.033, "skin"),
    (B.HIP_L, B.KN_L, 0.07, "pants"),
    (B.KN_L, B.AN_L, 0.055, "pants"),
    (B.AN_L, B.FO_L, 0.045, "shoe"),
    (B.HIP_R, B.KN_R, 0.07, "pants"),
    (B.KN_R, B.AN_R, 0.055, "pants"),
    (B.AN_R, B.FO_R, 0.045, "shoe"),
    (B.NECK, B.HEAD, 0.10, "skin"),
)


@dataclass(frozen=True)
class Rig:
    """World→depth-camera transform of one (setup, camera) position; the colour camera sits BASELINE to the left."""

    rotation: np.ndarray  # rows: camera x (right), y (up), z (forward) in world coordinates
    centre: np.ndarray
    zoom: float = 1.0  # the colour camera's focal length, as a multiple of COLOR_F

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.centre) @ self.rotation.T


PLACEMENTS = ("ntu", "new")


def make_rig(setup_rng: np.random.Generator, camera: int, placement: str = "ntu") -> Rig:
    """Camera ``camera`` of a setup: yaw from CAMERA_YAW, distance/height drawn per setup, looking at the chest.

    ``new``: placements the ``ntu`` ones never reach, for testing a model on a camera it was not trained with:
    farther (3.3-4.0 m instead of 2.1-2.8), higher (1.7-2.1 m instead of 0.8-1.4), aimed 0.8-1.2 m to one side of
    the performer (off-centre), with a wider colour lens (focal × 0.65-0.8): the person is smaller and elsewhere
    in the frame."""
    new = placement == "new"
    dist = setup_rng.uniform(3.3, 4.0) if new else setup_rng.uniform(2.1, 2.8)
    height = setup_rng.uniform(1.7, 2.1) if new else setup_rng.uniform(0.8, 1.4)
    yaw = np.radians(CAMERA_YAW.get(camera, 30.0 * (camera - 2)) + setup_rng.uniform(-5, 5))
    centre = np.array([dist * np.sin(yaw), height, dist * np.cos(yaw)])
    target = np.array([0.0, 1.0, 0.0])
    zoom = 1.0
    if new:
        side = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])  # horizontal, across the line of sight
        target = target + side * setup_rng.uniform(0.8, 1.2) * setup_rng.choice([-1.0, 1.0])
        zoom = float(setup_rng.uniform(0.65, 0.8))
    f = target - centre
    f /= np.linalg.norm(f)
    right = np.cross(f, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    return Rig(np.stack([right, up, f]), centre, zoom)


def project_depth(cam: np.ndarray) -> np.ndarray:
    """Depth-camera-space points (N, 3) → (N, 2) pixels in the 512x424 reference grid."""
    z = np.maximum(cam[:, 2], 1e-3)
    return np.stack([DEPTH_REF[0] / 2 + DEPTH_F * cam[:, 0] / z, DEPTH_REF[1] / 2 - DEPTH_F * cam[:, 1] / z], 1)


def project_color(cam: np.ndarray, zoom: float = 1.0) -> np.ndarray:
    """Depth-camera-space points → (N, 2) pixels of the colour camera in the 1920x1080 reference grid."""
    z = np.maximum(cam[:, 2], 1e-3)
    x = cam[:, 0] + BASELINE
    f = COLOR_F * zoom
    return np.stack([COLOR_REF[0] / 2 + f * x / z, COLOR_REF[1] / 2 - f * cam[:, 1] / z], 1)


def _fixed(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * (1 << SHIFT))), int(round(p[1] * (1 << SHIFT)))


def _draw_body(
    img: np.ndarray, pix: np.ndarray, cam: np.ndarray, focal: float, values, aa: bool, outline: float = 0.0
) -> None:
    """Painter's algorithm over capsules, far to near. ``values(part, z)`` gives the pixel value of a part.

    ``outline`` > 0 draws each limb over a darker rim (value x ``1 - outline``), the shading edge that lets a
    camera see an arm in front of a torso of the same colour."""
    order = sorted(SEGMENTS, key=lambda s: -(cam[s[0], 2] + cam[s[1], 2]))
    line_type = cv2.LINE_AA if aa else cv2.LINE_8
    for a, b, radius, part in order:
        z = 0.5 * (cam[a, 2] + cam[b, 2])
        r_px = radius * focal / z
        thick = max(1, int(round(2 * r_px)))
        val = values(part, z - radius)
        layers = [(val, thick, r_px)]
        if outline > 0:
            dark = tuple(float(v) * (1 - outline) for v in val)
            rim = max(1.0, 0.15 * r_px)
            layers = [(dark, thick + int(round(2 * rim)), r_px + rim), (val, thick, r_px)]
        for colour, th, r in layers:
            if part == "skin" and a == B.NECK and b == B.HEAD:
                cv2.circle(img, _fixed(pix[b]), int(round(r * (1 << SHIFT))), colour, -1, line_type, SHIFT)
            cv2.line(img, _fixed(pix[a]), _fixed(pix[b]), colour, th, line_type, SHIFT)


def room_depth(rig: Rig, size: tuple[int, int], scene_rng: np.random.Generator) -> np.ndarray:
    """Float32 depth (mm) of the empty room seen by the depth camera at ``size`` (W, H): the floor (world y = 0),
    a back wall 1.5-2.5 m behind the performer, and a few pieces of furniture in front of it."""
    w, h = size
    s = w / DEPTH_REF[0]
    u, v = np.meshgrid((np.arange(w) + 0.5) / s, (np.arange(h) + 0.5) / s)
    rays = np.stack([(u - DEPTH_REF[0] / 2) / DEPTH_F, -(v - DEPTH_REF[1] / 2) / DEPTH_F, np.ones_like(u)], -1)
    world = rays @ rig.rotation  # direction in world coordinates of a ray with camera z = 1
    depth = np.full((h, w), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = -rig.centre[1] / world[..., 1]
        depth = np.where((world[..., 1] < 0) & (floor > 0), floor, depth)
        n = -rig.centre * np.array([1.0, 0.0, 1.0])
        n /= np.linalg.norm(n)  # horizontal direction from the camera toward the performer
        wall = (float(n @ -rig.centre) + scene_rng.uniform(1.5, 2.5)) / (world @ n)
        depth = np.where((wall > 0) & (wall < depth), wall, depth)
    img = np.clip(depth, 0, 8.0).astype(np.float32)
    for _ in range(int(scene_rng.integers(2, 5))):
        x0, y0 = int(scene_rng.integers(0, w)), int(scene_rng.integers(h // 3, h))
        x1, y1 = x0 + int(scene_rng.integers(w // 10, w // 3)), y0 + int(scene_rng.integers(h // 10, h // 3))
        patch = img[y0:y1, x0:x1]
        patch[...] = np.minimum(patch, float(np.max(patch, initial=0.0)) - scene_rng.uniform(0.3, 1.2))
    return np.maximum(img, 0.5) * 1000.0


def _roi(pix: np.ndarray, size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """The skeleton-derived region of interest of NTU's masked depth: the joints' box grown by ``margin`` of its
    height on every side."""
    w, h = size
    x0, y0 = pix.min(0)
    x1, y1 = pix.max(0)
    m = margin * (y1 - y0)
    return (
        int(max(0, np.floor(x0 - m))),
        int(max(0, np.floor(y0 - m))),
        int(min(w, np.ceil(x1 + m))),
        int(min(h, np.ceil(y1 + m))),
    )


def render_depth(
    cam: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    room: np.ndarray | None = None,
    roi_margin: float = 0.15,
    quad: np.ndarray | None = None,
) -> np.ndarray:
    """Masked uint16 depth (mm) at ``size`` (W, H), with Kinect-like noise, edge loss and holes.

    With ``room`` (from :func:`room_depth`) the mask is NTU's: everything inside a region of interest around the
    skeleton keeps its depth, floor and wall included; without it only the person's silhouette does. ``quad``
    is a held object's (4, 3) corners, drawn with the person. Per-pixel noise comes from OpenCV's RNG (fast);
    callers seed it with ``cv2.setRNGSeed`` for determinism.
    """
    w, h = size
    s = w / DEPTH_REF[0]
    img = np.zeros((h, w), np.uint16)
    pix = project_depth(cam) * s
    _draw_body(img, pix, cam, DEPTH_F * s, lambda part, z: int(np.clip(z * 1000.0, 1, 65535)), aa=False)
    if quad is not None:
        q = project_depth(quad) * s
        cv2.fillPoly(
            img, [np.round(q * (1 << SHIFT)).astype(np.int32)], int(quad[:, 2].mean() * 1000.0), cv2.LINE_8, SHIFT
        )
    mask = img > 0
    depth = img.astype(np.float32)
    if room is not None:
        x0, y0, x1, y1 = _roi(pix, size, roi_margin)
        inside = np.zeros_like(mask)
        inside[y0:y1, x0:x1] = True
        depth = np.where(mask, depth, room * inside).astype(np.float32)
    noise = np.empty(depth.shape, np.float32)
    cv2.randn(noise, 1.0, 0.004)
    depth *= noise
    edge = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    cv2.randu(noise, 0.0, 1.0)
    drop = (edge & (noise < 0.35)) | (noise > 0.99)
    for _ in range(rng.integers(0, 3)):
        ys, xs = np.nonzero(mask)
        if len(xs):
            k = rng.integers(len(xs))
            cv2.circle(drop.view(np.uint8), (int(xs[k]), int(ys[k])), int(rng.integers(1, 4)), 1, -1)
    depth[drop] = 0
    if room is None:
        depth[~mask] = 0
    return np.clip(depth, 0, 65535).astype(np.uint16)


def scene_background(scene_rng: np.random.Generator, size: tuple[int, int], clutter: float = 1.0) -> np.ndarray:
    """A cluttered room for one (setup, camera): smooth colour field, furniture boxes, textured patches.

    ``clutter`` scales the room's contrast around mid-grey, so the person stands out more as it goes to 0."""
    w, h = size
    low = scene_rng.integers(40, 220, (4, 6, 3)).astype(np.uint8)
    bg = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    for _ in range(scene_rng.integers(8, 16)):
        x0, y0 = int(scene_rng.integers(0, w)), int(scene_rng.integers(0, h))
        x1, y1 = x0 + int(scene_rng.integers(w // 20, w // 3)), y0 + int(scene_rng.integers(h // 20, h // 2))
        colour = tuple(float(c) for c in scene_rng.integers(0, 256, 3))
        cv2.rectangle(bg, (x0, y0), (x1, y1), colour, -1)
    for _ in range(scene_rng.integers(4, 10)):
        c = (int(scene_rng.integers(0, w)), int(scene_rng.integers(0, h)))
        cv2.circle(
            bg, c, int(scene_rng.integers(h // 30, h // 8)), tuple(float(v) for v in scene_rng.integers(0, 256, 3)), -1
        )
    texture = scene_rng.normal(0, 10, (h // 4 + 1, w // 4 + 1, 3)).astype(np.float32)
    bg += cv2.resize(texture, (w, h), interpolation=cv2.INTER_NEAREST)
    return 128.0 + clutter * (bg - 128.0)


@dataclass
class Distractor:
    """A coloured object moving across the RGB view (people walking by, swinging objects); not in depth."""

    start: np.ndarray
    velocity: np.ndarray
    size: np.ndarray
    colour: tuple[float, float, float]
    angle: float
    spin: float
    front: bool


def make_distractors(
    rng: np.random.Generator, size: tuple[int, int], n_frames: int, subject: B.Subject, clutter: float = 1.0
) -> list:
    """Up to ``round(3 * clutter)`` moving objects."""
    w, h = size
    out = []
    for _ in range(int(rng.integers(0, round(3 * clutter) + 1))):
        start = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        velocity = rng.normal(0, 1, 2) * np.array([w, h]) * rng.uniform(0.3, 1.0) / n_frames
        lengths = np.array([rng.uniform(0.04, 0.2) * h, rng.uniform(0.02, 0.06) * h])
        # Some distractors wear the subject's colours: colour alone must not identify the person.
        colour = (subject.shirt, subject.skin, subject.pants, tuple(rng.integers(0, 256, 3)))[int(rng.integers(4))]
        out.append(
            Distractor(
                start,
                velocity,
                lengths,
                tuple(float(c) for c in colour),
                rng.uniform(0, 180),
                rng.normal(0, 6),
                bool(rng.random() < 0.3),
            )
        )
    return out


def _draw_distractors(img, distractors, frame: int) -> None:
    for d in distractors:
        c = d.start + d.velocity * frame
        box = ((float(c[0]), float(c[1])), (float(d.size[0]), float(d.size[1])), d.angle + d.spin * frame)
        cv2.fillPoly(img, [cv2.boxPoints(box).astype(np.int32)], d.colour, cv2.LINE_AA)


def render_rgb(
    cam: np.ndarray,
    size: tuple[int, int],
    background: np.ndarray,
    subject: B.Subject,
    distractors: list,
    frame: int,
    light: tuple[float, np.ndarray],
    noise_bank: list[np.ndarray],
    held: tuple[str, np.ndarray] | None = None,
    zoom: float = 1.0,
    blur: np.ndarray | None = None,
) -> np.ndarray:
    """RGB uint8 frame (H, W, 3): background, distractors behind, the person and what they hold (``held``: kind
    and (4, 3) corners), distractors in front, light, motion blur (``blur``: a kernel), noise; ``zoom``: the colour
    focal length × COLOR_F."""
    w, _ = size
    s = w / COLOR_REF[0]
    img = background.copy()
    _draw_distractors(img, [d for d in distractors if not d.front], frame)
    pix = project_color(cam, zoom) * s
    colours = {
        "shirt": subject.shirt,
        "sleeve": subject.shirt,
        "pants": subject.pants,
        "skin": subject.skin,
        "shoe": (30, 30, 35),
    }

    def shade(part, z):
        k = float(np.clip(1.25 - 0.12 * z, 0.6, 1.15))
        return tuple(float(c) * k for c in colours[part])

    _draw_body(img, pix, cam, COLOR_F * zoom * s, shade, aa=True, outline=0.45)
    if held is not None:
        _draw_object(img, project_color(held[1], zoom) * s, held[0])
    _draw_distractors(img, [d for d in distractors if d.front], frame)
    gain, cast = light
    img *= gain * cast
    if blur is not None:
        img = cv2.filter2D(img, -1, blur, borderType=cv2.BORDER_REFLECT)
    img += noise_bank[frame % len(noise_bank)]
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


def _draw_object(img: np.ndarray, q: np.ndarray, kind: str) -> None:
    """A held board in the colour image: ``book`` (white pages, dark lines of text) or ``phone`` (black, lit
    screen). Same outline for both, so only appearance separates them."""

    def poly(pts):
        return [np.round(pts * (1 << SHIFT)).astype(np.int32)]

    if kind == "book":
        cv2.fillPoly(img, poly(q), (235.0, 228.0, 205.0), cv2.LINE_AA, SHIFT)
        for f in np.linspace(0.2, 0.8, 5):
            a, b = q[0] + f * (q[3] - q[0]), q[1] + f * (q[2] - q[1])
            a, b = a + 0.1 * (b - a), b - 0.1 * (b - a)
            cv2.line(img, _fixed(a), _fixed(b), (40.0, 40.0, 60.0), 1, cv2.LINE_AA, SHIFT)
    elif kind == "phone":
        cv2.fillPoly(img, poly(q), (22.0, 22.0, 28.0), cv2.LINE_AA, SHIFT)
        c = q.mean(0)
        cv2.fillPoly(img, poly(c + 0.75 * (q - c)), (70.0, 170.0, 255.0), cv2.LINE_AA, SHIFT)
    else:
        raise KeyError(kind)


def sensor_noise(size: tuple[int, int], n: int = 3, sigma: float = 5.0) -> list[np.ndarray]:
    """A few frames of Gaussian sensor noise reused cyclically (drawing fresh noise per frame costs more than
    rendering); seeded through ``cv2.setRNGSeed``."""
    w, h = size
    bank = [np.empty((h, w, 3), np.float32) for _ in range(n)]
    for b in bank:
        cv2.randn(b, 0.0, sigma)
    return bank


def motion_blur(rng: np.random.Generator, n_frames: int, length: float) -> list[np.ndarray | None]:
    """Per-frame motion-blur kernels: a line of up to ``length`` pixels (each frame draws its length) in one
    direction per video, the camera's shake during exposure; none when ``length`` is 0."""
    if length <= 0:
        return [None] * n_frames
    angle = rng.uniform(0, np.pi)
    size = 2 * int(np.ceil(length / 2)) + 1
    out: list[np.ndarray | None] = []
    for _ in range(n_frames):
        k = np.zeros((size, size), np.float32)
        half = rng.uniform(0, length) / 2
        c = size // 2
        dx, dy = half * np.cos(angle), half * np.sin(angle)
        p0, p1 = (c - dx, c - dy), (c + dx, c + dy)
        cv2.line(k, _fixed(np.array(p0)), _fixed(np.array(p1)), 1.0, 1, cv2.LINE_AA, SHIFT)
        k[c, c] = max(k[c, c], 1.0)
        out.append(k / k.sum())
    return out


def lighting(rng: np.random.Generator, n_frames: int) -> list[tuple[float, np.ndarray]]:
    """Per-frame global gain and colour cast: a slow drift plus an occasional light switch."""
    base = rng.uniform(0.55, 1.3)
    drift = rng.uniform(-0.3, 0.3)
    switch = int(rng.integers(0, n_frames)) if rng.random() < 0.4 else None
    jump = rng.uniform(-0.35, 0.35)
    cast = np.clip(1 + rng.normal(0, 0.12, 3), 0.7, 1.3).astype(np.float32)
    out = []
    for i in range(n_frames):
        g = base + drift * i / max(1, n_frames - 1) + (jump if switch is not None and i >= switch else 0.0)
        out.append((float(np.clip(g, 0.35, 1.6)), cast))
    return out


def person_mask(cam: np.ndarray, size: tuple[int, int], camera: str = "color") -> np.ndarray:
    """Boolean (H, W) silhouette of the body as seen by the colour or depth camera, at image ``size``."""
    w, h = size
    ref, focal, proj = (COLOR_REF, COLOR_F, project_color) if camera == "color" else (DEPTH_REF, DEPTH_F, project_depth)
    s = w / ref[0]
    img = np.zeros((h, w), np.uint8)
    _draw_body(img, proj(cam) * s, cam, focal * s, lambda part, z: 255, aa=False)
    return img > 0
