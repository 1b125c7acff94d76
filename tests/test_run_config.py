"""A run folder's config as later stages read it: one loader, defaults for keys added since, said in the log."""

from __future__ import annotations

import logging

import pytest
import yaml

from modistill.config import CONFIG_DIR, dump_config, load_config, load_run_config
from modistill.errors import UserError


def test_a_run_made_before_a_key_existed_reads_with_its_default_and_says_so(tmp_path, caplog):
    cfg = load_config(CONFIG_DIR / "demo.yaml", ["data.cache=/nowhere"])
    old = yaml.safe_load(dump_config(cfg))
    del old["model"]["privileged"], old["distill"]["hall_init"]  # keys a run made before them lacks
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    caplog.set_level(logging.INFO, logger="modistill")
    got = load_run_config(tmp_path)
    assert got["model"]["privileged"] == "depth" and got["distill"]["hall_init"] == "depth"  # what such runs did
    assert "made before keys ['model.privileged', 'distill.hall_init']; they take their defaults" in caplog.text
    assert load_run_config(tmp_path, ["train.lr=0.5"])["train"]["lr"] == 0.5


def test_a_damaged_run_config_is_one_line(tmp_path):
    with pytest.raises(UserError, match="config.yaml: run config not found"):
        load_run_config(tmp_path)
    (tmp_path / "config.yaml").write_text("train: [unclosed\n")
    with pytest.raises(UserError, match="config.yaml: invalid YAML"):
        load_run_config(tmp_path)
