"""A 25-joint NTU/Kinect-v2 body driven by a few joint angles, and the class-specific motion programs.

Angles are in degrees. Body frame: x = body's right, y = up, z = body's forward. Each action class is a set of
angle trajectories over the action phase ``t`` in [0, 1]; per-video jitter (speed, amplitude, start) is applied
by :func:`pose_sequence`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Indices (0-based) of the NTU joints.
(
    SPINE_BASE,
    SPINE_MID,
    NECK,
    HEAD,
    SH_L,
    EL_L,
    WR_L,
    HA_L,
    SH_R,
    EL_R,
    WR_R,
    HA_R,
    HIP_L,
    KN_L,
    AN_L,
    FO_L,
    HIP_R,
    KN_R,
    AN_R,
    FO_R,
    SPINE_SH,
    TIP_L,
    THUMB_L,
    TIP_R,
    THUMB_R,
) = range(25)

ANGLES = (
    "lean",
    "twist",
    "crouch",
    "root_x",
    "root_z",
    "root_y",
    "sh_flex_l",
    "sh_abd_l",
    "el_l",
    "sh_flex_r",
    "sh_abd_r",
    "el_r",
    "hip_flex_l",
    "hip_abd_l",
    "knee_l",
    "hip_flex_r",
    "hip_abd_r",
    "knee_r",
)


@dataclass(frozen=True)
class Subject:
    """A performer: body size and proportions, clothing and skin colours (RGB 0-255), movement speed."""

    height: float
    arm: float
    leg: float
    width: float
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    skin: tuple[int, int, int]
    speed: float
    thickness: float


def make_subject(rng: np.random.Generator) -> Subject:
    def colour():
        return tuple(int(c) for c in rng.integers(20, 236, 3))

    skin_base = np.array([224, 172, 130]) * rng.uniform(0.45, 1.05)
    return Subject(
        height=float(rng.uniform(1.5, 1.9)),
        arm=float(rng.uniform(0.92, 1.08)),
        leg=float(rng.uniform(0.92, 1.08)),
        width=float(rng.uniform(0.88, 1.15)),
        shirt=colour(),
        pants=colour(),
        skin=tuple(int(c) for c in np.clip(skin_base, 0, 255)),
        speed=float(rng.uniform(0.8, 1.25)),
        thickness=float(rng.uniform(0.85, 1.2)),
    )


def _bump(t, centre=0.5, width=0.35):
    """A smooth 0→1→0 profile over the action (raised cosine), zero outside [centre-width, centre+width]."""
    x = np.clip((t - centre) / width, -1.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))


def _osc(t, cycles, phase=0.0):
    return np.sin(2 * np.pi * (cycles * t + phase))


def _program(name, t):
    """Angle trajectories of one named action. Missing angles stay at rest (0)."""
    b = _bump(t)
    a: dict[str, np.ndarray] = {}
    if name == "wave right hand":
        a["sh_abd_r"] = 150 * b
        a["el_r"] = b * (35 + 30 * _osc(t, 3))
    elif name == "wave left hand":
        a["sh_abd_l"] = 150 * b
        a["el_l"] = b * (35 + 30 * _osc(t, 3))
    elif name == "hands up":
        a["sh_flex_l"] = a["sh_flex_r"] = 165 * b
    elif name == "punch forward":
        s = np.maximum(_osc(t, 2), 0) * b
        a["sh_flex_r"] = 85 * b
        a["el_r"] = 110 * b * (1 - s)
        a["sh_flex_l"] = 40 * b
        a["el_l"] = 110 * b
    elif name == "kick forward":
        a["hip_flex_r"] = 75 * _bump(t, 0.5, 0.25)
        a["knee_r"] = 40 * _bump(t, 0.42, 0.2)
    elif name == "squat down":
        a["crouch"] = 0.35 * b
        a["knee_l"] = a["knee_r"] = 100 * b
        a["hip_flex_l"] = a["hip_flex_r"] = 70 * b
        a["lean"] = 25 * b
        a["sh_flex_l"] = a["sh_flex_r"] = 60 * b
    elif name == "clapping":
        a["sh_flex_l"] = a["sh_flex_r"] = 70 * b
        a["sh_abd_l"] = a["sh_abd_r"] = b * (25 + 20 * _osc(t, 4))
        a["el_l"] = a["el_r"] = 30 * b
    elif name == "bow":
        a["lean"] = 55 * b
        a["sh_flex_l"] = a["sh_flex_r"] = 20 * b
    elif name == "jump up":
        j = np.maximum(_osc(t, 2, 0.0), 0) * b
        a["root_y"] = 0.25 * j
        a["knee_l"] = a["knee_r"] = 40 * b * (1 - j)
        a["sh_abd_l"] = a["sh_abd_r"] = 40 * j
    elif name == "walk toward camera":
        a["root_z"] = -0.9 * t
        a["hip_flex_l"] = 30 * _osc(t, 2)
        a["hip_flex_r"] = -30 * _osc(t, 2)
        a["sh_flex_l"] = -20 * _osc(t, 2)
        a["sh_flex_r"] = 20 * _osc(t, 2)
        a["knee_l"] = 25 * np.maximum(_osc(t, 2, 0.25), 0)
        a["knee_r"] = 25 * np.maximum(-_osc(t, 2, 0.25), 0)
    elif name == "side step":
        a["root_x"] = 0.6 * np.sin(np.pi * t) * _osc(t, 1)
        a["hip_abd_l"] = a["hip_abd_r"] = 15 * np.abs(_osc(t, 2))
    elif name == "touch head":
        a["sh_flex_l"] = a["sh_flex_r"] = 100 * b
        a["sh_abd_l"] = a["sh_abd_r"] = 45 * b
        a["el_l"] = a["el_r"] = 140 * b
    elif name == "reach forward":
        a["sh_flex_r"] = a["sh_flex_l"] = 90 * b
        a["lean"] = 30 * b
    elif name == "turn around":
        a["twist"] = 180 * t
    elif name == "arm circles":
        a["sh_flex_l"] = a["sh_flex_r"] = b * (90 + 60 * _osc(t, 2))
        a["sh_abd_l"] = a["sh_abd_r"] = b * (60 + 50 * _osc(t, 2, 0.25))
    elif name == "point right":
        a["sh_abd_r"] = 90 * b
        a["twist"] = -25 * b
    elif name in HELD_OBJECT:
        # One motion for every object class: only the object's appearance tells them apart.
        a["sh_flex_l"] = a["sh_flex_r"] = 40 * b
        a["sh_abd_l"] = a["sh_abd_r"] = -12 * b
        a["el_l"] = a["el_r"] = 100 * b + 10 * b * _osc(t, 2)
        a["lean"] = 8 * b
    else:
        raise KeyError(name)
    return a


# Object classes share one motion and one object shape: depth sees the same flat board in the hands, only RGB
# sees what it is (a white book with lines of text, a black phone with a lit screen).
HELD_OBJECT = {"read book": "book", "play with phone": "phone"}

# The first ten are the demo's classes: most separable by both modalities, two mainly by depth (motion along the
# camera's line of sight: walking toward it, punching toward the body's front), two only by appearance (the
# object classes).
NAMED_ACTIONS = (
    "wave right hand",
    "hands up",
    "read book",
    "walk toward camera",
    "kick forward",
    "play with phone",
    "squat down",
    "punch forward",
    "clapping",
    "bow",
    "jump up",
    "touch head",
    "wave left hand",
    "side step",
    "reach forward",
    "turn around",
    "arm circles",
    "point right",
)


def class_names(n_classes: int) -> list[str]:
    """Names of the first ``n_classes`` actions; beyond the named ones, procedural motions ``procedural-K``."""
    return [NAMED_ACTIONS[i] if i < len(NAMED_ACTIONS) else f"procedural-{i + 1}" for i in range(n_classes)]


def held_object(label: int) -> str | None:
    """The object class ``label`` (0-based) holds in both hands (``book`` / ``phone``), or None."""
    return HELD_OBJECT.get(NAMED_ACTIONS[label]) if label < len(NAMED_ACTIONS) else None


def object_quad(joints: np.ndarray) -> np.ndarray:
    """(4, 3) corners of the board held between the hands (0.22 x 0.15 m), tilted 35 degrees toward the face."""
    right = joints[SH_R] - joints[SH_L]
    right /= np.linalg.norm(right)
    up = joints[SPINE_SH] - joints[SPINE_BASE]
    up /= np.linalg.norm(up)
    forward = np.cross(right, up)
    centre = 0.5 * (joints[HA_L] + joints[HA_R]) + 0.02 * forward
    v = np.cos(np.radians(35)) * up + np.sin(np.radians(35)) * forward
    w, h = 0.11, 0.075
    return np.stack(
        [centre - w * right - h * v, centre + w * right - h * v, centre + w * right + h * v, centre - w * right + h * v]
    )


def action_angles(label: int, t: np.ndarray) -> dict[str, np.ndarray]:
    """Angle trajectories for class ``label`` (0-based) at phases ``t``."""
    if label < len(NAMED_ACTIONS):
        return _program(NAMED_ACTIONS[label], t)
    rng = np.random.default_rng(10_000 + label)
    b = _bump(t)
    a: dict[str, np.ndarray] = {}
    for key in rng.choice(
        [
            "sh_flex_l",
            "sh_abd_l",
            "el_l",
            "sh_flex_r",
            "sh_abd_r",
            "el_r",
            "hip_flex_r",
            "hip_flex_l",
            "lean",
            "twist",
            "knee_l",
            "knee_r",
        ],
        size=3,
        replace=False,
    ):
        amp = rng.uniform(30, 120) if key not in ("lean", "twist") else rng.uniform(15, 45)
        a[str(key)] = b * amp * (0.6 + 0.4 * _osc(t, int(rng.integers(1, 4)), rng.uniform()))
    return a


def _rot_x(deg):
    r = np.radians(deg)
    c, s = np.cos(r), np.sin(r)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(deg):
    r = np.radians(deg)
    c, s = np.cos(r), np.sin(r)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(deg):
    r = np.radians(deg)
    c, s = np.cos(r), np.sin(r)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def pose(subject: Subject, ang: dict[str, float]) -> np.ndarray:
    """Joint positions (25, 3) in the body frame (metres) for one set of angles; feet on y=0 at rest."""
    h = subject.height
    g = lambda k: float(ang.get(k, 0.0))  # noqa: E731
    J = np.zeros((25, 3))
    leg_u, leg_l, foot = 0.245 * h * subject.leg, 0.245 * h * subject.leg, 0.07 * h
    hip_h = leg_u + leg_l + 0.04 * h
    root = np.array([g("root_x"), hip_h - g("crouch") * h * 0.5 + g("root_y"), g("root_z")])
    torso = _rot_y(g("twist")) @ _rot_x(g("lean"))
    up = torso @ np.array([0, 1.0, 0])
    right = torso @ np.array([1.0, 0, 0])
    J[SPINE_BASE] = root
    J[SPINE_MID] = root + up * 0.16 * h
    J[SPINE_SH] = root + up * 0.30 * h
    J[NECK] = root + up * 0.34 * h
    J[HEAD] = root + up * 0.42 * h
    sw, hw = 0.11 * h * subject.width, 0.06 * h * subject.width
    u_arm, f_arm, hand = 0.17 * h * subject.arm, 0.15 * h * subject.arm, 0.05 * h
    for side, sgn in (("l", -1.0), ("r", 1.0)):
        sh, el, wr, ha, tip, th = (
            (SH_L, EL_L, WR_L, HA_L, TIP_L, THUMB_L) if side == "l" else (SH_R, EL_R, WR_R, HA_R, TIP_R, THUMB_R)
        )
        J[sh] = J[SPINE_SH] + right * sgn * sw - up * 0.02 * h
        # Upper arm hangs down, abducts sideways (about the forward axis), flexes forward (about the lateral axis).
        r_upper = torso @ _rot_x(-g(f"sh_flex_{side}")) @ _rot_z(sgn * g(f"sh_abd_{side}"))
        d_upper = r_upper @ np.array([0, -1.0, 0])
        r_fore = r_upper @ _rot_x(-g(f"el_{side}"))
        d_fore = r_fore @ np.array([0, -1.0, 0])
        J[el] = J[sh] + d_upper * u_arm
        J[wr] = J[el] + d_fore * f_arm
        J[ha] = J[wr] + d_fore * hand * 0.5
        J[tip] = J[wr] + d_fore * hand
        J[th] = J[wr] + d_fore * hand * 0.6 + (r_fore @ np.array([0, 0, 1.0])) * 0.03 * h
        hip, kn, an, fo = (HIP_L, KN_L, AN_L, FO_L) if side == "l" else (HIP_R, KN_R, AN_R, FO_R)
        base_rot = _rot_y(g("twist") * 0.3)
        J[hip] = root + (base_rot @ np.array([sgn * hw, -0.03 * h, 0]))
        r_thigh = base_rot @ _rot_x(-g(f"hip_flex_{side}")) @ _rot_z(sgn * g(f"hip_abd_{side}"))
        d_thigh = r_thigh @ np.array([0, -1.0, 0])
        r_shin = r_thigh @ _rot_x(g(f"knee_{side}"))
        d_shin = r_shin @ np.array([0, -1.0, 0])
        J[kn] = J[hip] + d_thigh * leg_u
        J[an] = J[kn] + d_shin * leg_l
        J[fo] = J[an] + (r_shin @ np.array([0, 0, 1.0])) * foot + np.array([0, -0.03 * h, 0])
    return J


def pose_sequence(subject: Subject, label: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Joint positions (T, 25, 3) for one performance: class motion with per-video speed/amplitude/start jitter."""
    speed = subject.speed * rng.uniform(0.85, 1.15)
    start = rng.uniform(-0.12, 0.12)
    amp = rng.uniform(0.8, 1.15)
    t = np.clip(start + np.linspace(0.0, 1.0, n_frames) * speed, 0.0, 1.0)
    traj = action_angles(label, t)
    idle = {k: rng.normal(0, 4) for k in ("sh_abd_l", "sh_abd_r", "sh_flex_l", "sh_flex_r", "el_l", "el_r")}
    sway = rng.uniform(0, 1)
    out = np.empty((n_frames, 25, 3))
    for i in range(n_frames):
        ang = {k: float(v[i]) * (amp if k not in ("root_x", "root_z", "twist") else 1.0) for k, v in traj.items()}
        for k, v in idle.items():
            ang[k] = ang.get(k, 0.0) + v + 2.0 * np.sin(2 * np.pi * (t[i] + sway))
        out[i] = pose(subject, ang)
    return out
