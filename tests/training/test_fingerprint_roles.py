"""Which config keys decide whether a finished step can be reused: every key has exactly one declared role, and the
global batch of a multi-process step is part of its fingerprint."""

from __future__ import annotations

from collections import Counter

from modistill.config import CONFIG_DIR, SCHEMA, load_config
from modistill.training.fingerprint import FINGERPRINT_ROLES, step_records, world_size


def test_every_config_key_declares_a_fingerprint_role():
    from modistill.config import ROLES

    assert sorted(k for k, f in SCHEMA.items() if f.role not in ROLES) == []


def test_every_config_key_has_exactly_one_fingerprint_role():
    roles = Counter(k for keys in FINGERPRINT_ROLES.values() for k in keys)
    assert sorted(k for k in SCHEMA if k not in roles) == [], "keys with no fingerprint role"
    assert sorted(k for k in roles if k not in SCHEMA) == [], "roles for keys the schema does not have"
    assert [k for k, n in roles.items() if n > 1] == [], "keys with several roles"


def _fingerprints(cfg: dict) -> dict[str, str]:
    return {step: rec["fingerprint"] for step, rec in step_records(cfg, "32-true", "data").items()}


def test_the_world_size_enters_a_steps_fingerprint_only_above_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    cfg = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere", "train.accelerator=cpu"])
    one = _fingerprints(cfg)
    assert world_size(cfg) == 1
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert _fingerprints(cfg) == one  # one process: the fingerprint every earlier run has
    monkeypatch.setenv("WORLD_SIZE", "4")
    four = _fingerprints(cfg)
    assert set(four) == set(one) and all(four[s] != one[s] for s in one)  # 4 x the batch per optimizer step
    monkeypatch.delenv("WORLD_SIZE")
    two_nodes = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere", "train.devices=2", "train.num_nodes=2"])
    assert world_size(two_nodes) == 4 and _fingerprints(two_nodes) == four
