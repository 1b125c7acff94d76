"""Table 1/2-style rows from the steps' metrics: which step and which logits give each row."""

from __future__ import annotations

# (row, method, test modality, loss, step, which logits: "fused" or a stream's role). The test modality says what
# the logits saw at test time: rows 7 and 11-13 receive real depth through the connections.
TABLE2 = (
    ("1", "step 1, depth stream", "Depth", "x-entr", "step1_depth", "fused"),
    ("2", "step 1, RGB stream", "RGB", "x-entr", "step1_rgb", "fused"),
    ("3", "Hoffman et al. w/o connections", "RGB", "eq. 3", "hoffman_eq3", "fused"),
    ("4", "Hoffman et al. w/o connections", "RGB", "eq. 5", "hoffman_eq5", "fused"),
    ("5", "Hoffman et al. w/o connections", "RGB", "eq. 7", "hoffman_eq7", "fused"),
    ("6", "step 2, depth stream", "Depth", "x-entr", "step2", "privileged"),
    ("7", "step 2, RGB stream", "RGB + depth via connections", "x-entr", "step2", "rgb"),
    ("8", "step 2", "RGB & Depth", "x-entr", "step2", "fused"),
    ("9", "step 2 w/o connections", "RGB & Depth", "x-entr", "step2_noconn", "fused"),
    ("10", "step 3 w/o connections", "RGB (hall)", "eq. 3", "step3_noconn_eq3", "hall"),
    ("11", "step 3 w/ connections", "RGB (hall) + depth via connections", "eq. 3", "step3_eq3", "hall"),
    ("12", "step 3 w/ connections", "RGB (hall) + depth via connections", "eq. 5", "step3_eq5", "hall"),
    ("13", "step 3 w/ connections", "RGB (hall) + depth via connections", "eq. 7", "step3", "hall"),
    ("14", "step 3 w/o connections", "RGB (hall)", "eq. 7", "step3_noconn", "hall"),
    ("15", "step 4", "RGB", "x-entr", "step4", "fused"),
    ("15r", "step 4 w/o connections (released code)", "RGB", "x-entr", "step4_noconn", "fused"),
    ("C1", "control: RGB alone, step 4's RGB budget", "RGB", "x-entr", "rgb_budget", "fused"),
    ("C2", "control: two RGB streams fused as step 4, its budget", "RGB", "x-entr", "rgb_ensemble", "fused"),
    (
        "C2i",
        "control: two independent RGB streams fused as step 4, its budget",
        "RGB",
        "x-entr",
        "rgb_ensemble_indep",
        "fused",
    ),
    (
        "6a",
        "inverted RGB→depth: step 2, depth stream",
        "Depth + RGB via connections",
        "x-entr",
        "step2_inv",
        "privileged",
    ),
    ("7a", "inverted RGB→depth: step 2, RGB stream", "RGB", "x-entr", "step2_inv", "rgb"),
    ("8a", "inverted RGB→depth: step 2", "RGB & Depth", "x-entr", "step2_inv", "fused"),
    (
        "13a",
        "inverted RGB→depth: step 3",
        "RGB (hall) + depth (itself fed RGB) via connections",
        "eq. 7",
        "step3_inv",
        "hall",
    ),
    (
        "13b",
        "inverted: step 3, teacher without its RGB injection",
        "RGB (hall) + depth via connections",
        "eq. 7",
        "step3_inv_bare",
        "hall",
    ),
    ("15a", "inverted RGB→depth: step 4", "RGB", "x-entr", "step4_inv", "fused"),
)


# The paper's Table 2 (cross-subject, cross-view; None where not reported).
PAPER = {
    "1": (70.44, 75.16),
    "2": (66.52, 71.39),
    "3": (64.64, None),
    "4": (68.60, None),
    "5": (70.70, None),
    "6": (71.09, 77.30),
    "7": (66.68, 56.26),
    "8": (79.73, 81.43),
    "9": (78.27, 82.11),
    "10": (69.93, 70.64),
    "11": (70.47, None),
    "12": (71.52, None),
    "13": (71.93, 74.10),
    "14": (71.10, None),
    "15": (73.42, 77.21),
}


def paper_value(row: str, protocol: str) -> str:
    """The paper's accuracy for a row under the run's NTU protocol, as text ("-" where it has none)."""
    pair = PAPER.get(row)
    value = None if pair is None else {"cross-subject": pair[0], "cross-view": pair[1]}.get(protocol)
    return "-" if value is None else f"{value:.2f}%"


def table2_rows(metrics: dict[str, dict], privileged: str = "depth") -> list[dict]:
    """Rows whose step was run, with the measured accuracy (fraction); ``privileged`` names the modality the
    depth stream saw (``model.privileged``) in the method and test-modality words."""
    from modistill.data.modalities import as_privileged

    rows = []
    for row, method, modality, loss, step, which in TABLE2:
        if step not in metrics:
            continue
        m = metrics[step]
        acc = m["accuracy"] if which == "fused" else m["streams"][which]
        scores = m.get("scores", {}).get(which, {})
        rows.append(
            {
                "row": row,
                "method": as_privileged(method, privileged),
                "modality": as_privileged(modality, privileged),
                "loss": loss,
                "step": step,
                "accuracy": acc,
                "top5": scores.get("top5") or "-",
                "mean_class": scores.get("mean_class") or "-",
            }
        )
    return rows


def per_video_correct(metrics: dict[str, dict]) -> dict[str, list[int]]:
    """Row → 0/1 per test video, in sorted name order (the same order for every row of a run), for the rows whose
    predictions the step recorded (stream rows need ``stream_pred``, which older runs lack)."""
    out = {}
    for row, _, _, _, step, which in TABLE2:
        m = metrics.get(step)
        if m is None or "test_names" not in m:
            continue
        pred = m["pred"] if which == "fused" else m.get("stream_pred", {}).get(which)
        if pred is None:
            continue
        by_name = {n: int(p == y) for n, p, y in zip(m["test_names"], pred, m["label"], strict=True)}
        out[row] = [by_name[n] for n in sorted(by_name)]
    return out


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(c[1] for c in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_fmt(r[c[0]]) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{100 * v:.2f}%"
    return str(v)
