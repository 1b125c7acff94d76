"""The LightningModule of one training step: builds the multiple-stream model and computes the step's loss."""

from __future__ import annotations

import random
from typing import cast

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.functional.classification import multiclass_accuracy

from modistill import losses
from modistill.config import Config
from modistill.errors import NonFiniteError
from modistill.models.backbone import build_stream
from modistill.models.multistream import MultiStream, StreamOutput
from modistill.models.preprocess import normalize
from modistill.training.schedule import is_constant, lr_factor
from modistill.training.steps import PRIVILEGED, STEPS, connections_for, stream_inputs


def classification_scores(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float | None]:
    """Top-1, top-5 and mean-class accuracy, as MMAction2 reports them (top-5 only above 5 classes, where it
    says something). Mean-class accuracy is the mean recall over the classes present in the test labels
    (torchmetrics' macro average would also count classes that are only predicted)."""

    def acc(**kw) -> float:
        return float(multiclass_accuracy(logits, labels, num_classes=num_classes, average="micro", **kw))

    pred = logits.argmax(-1)
    recalls = [(pred[labels == c] == c).float().mean() for c in torch.unique(labels)]
    return {
        "top1": acc(),
        "top5": acc(top_k=5) if num_classes > 5 else None,
        "mean_class": float(torch.stack(recalls).mean()),
    }


def ema_update(decay: float):
    """The averaging rule of ``train.ema_decay``: ``avg ← d·avg + (1−d)·w`` with ``d = min(decay, (1+n)/(10+n))`` after
    ``n`` updates (TensorFlow's ExponentialMovingAverage with ``num_updates``). The warm-up matters for the short
    fine-tuning steps: with a fixed 0.99, 60 updates would still weigh the starting weights by 0.55."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor | int) -> None:
        if not averaged[0].is_floating_point():  # counters (BatchNorm's num_batches_tracked) follow the model
            torch._foreach_copy_(averaged, current)
            return
        n = int(n)
        torch._foreach_lerp_(averaged, current, 1 - min(decay, (1 + n) / (10 + n)))

    return update


class StepModule(L.LightningModule):
    """One step of the method (or an ablation), configured by a :class:`StepSpec` and the run config."""

    def __init__(self, step: str, cfg: Config, num_classes: int, ema: bool = True):
        """``ema=False``: no averaged copy even when ``train.ema_decay`` is set, for loading a finished step's
        ``weights.pt`` (which already holds the averaged weights)."""
        super().__init__()
        self.spec = STEPS[step]
        self.step_name = step
        self.cfg = cfg
        m = cfg.model
        streams = {}
        for name in self.spec.streams:
            pretrained = m.pretrained if self.spec.init[name] is None else None
            streams[name] = build_stream(m.arch, num_classes, m.width, m.temporal, pretrained, m.zero_init_residual)
        fuse = list(self.spec.select) or list(self.spec.streams)
        inputs = stream_inputs(self.spec, m.privileged)
        self.net = MultiStream(streams, inputs, connections_for(self.spec, m.connection), fuse=fuse)
        for name in self.spec.frozen:
            self.net.freeze(name)
        self.modalities = sorted(set(inputs.values()))
        self.needs_features = self.spec.loss != "ce"
        self.test_records: list[dict] = []
        self.num_classes = num_classes
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")  # reduced over DDP ranks
        decay = cfg.train.ema_decay if ema else 0.0
        # The averaged copy is part of the state dict, so checkpoints carry it and a resumed step continues it.
        self.ema = AveragedModel(self.net, multi_avg_fn=ema_update(decay), use_buffers=True) if decay else None
        if self.ema is not None:  # not trained: kept out of the optimizer and of DDP's gradient reduction
            self.ema.requires_grad_(False)

    def forward(self, batch: dict) -> StreamOutput:
        dtype = next(self.net.parameters()).dtype  # bf16/fp16 under *-true precision, else float32
        stats = self.net.stream(next(iter(self.net.streams))).input_stats
        inputs = {m: normalize(batch[m], dtype, stats) for m in self.modalities}
        net = self.ema.module if self.ema is not None and not self.training else self.net
        return net(inputs, return_features=self.needs_features)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    def adopt_ema(self) -> None:
        """Make the averaged weights the step's weights (for its test, weights.pt and the steps initialised from
        it) and drop the copy."""
        if self.ema is not None:
            self.net.load_state_dict(self.ema.module.state_dict())
            self.ema = None

    def _ce(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.cfg.train.label_smoothing)

    def compute_loss(self, out: StreamOutput, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        d = self.cfg.distill
        kind = self.spec.loss
        if kind == "ce":
            return self._ce(out.fused, y), {}
        terms = losses.distillation_losses(
            out.logits["hall"],
            y,
            out.logits[PRIVILEGED],
            out.features[PRIVILEGED],
            out.features["hall"],
            alpha=d.alpha,
            lam=d.lambda_,
            temperature=d.temperature,
            t2_scaling=d.t2_scaling,
            layers=d.hall_layers,
            reduction=d.hall_reduction,
            hall_weight=d.hall_weight,
            label_smoothing=self.cfg.train.label_smoothing,
        )
        distill = terms[kind.removeprefix("hoffman-")]
        parts = {"hall": terms["eq3"].detach(), "gd": terms["eq5"].detach()}
        if kind.startswith("hoffman"):
            # Hoffman et al.'s one-step training, as we read the paper's rows 3-5 (the paper does not spell out the
            # terms): all three streams train together from step 1, with a cross-entropy on the RGB+depth fused
            # logits, one on the RGB+hall fused logits, and the row's distillation loss (eq. 3, 5 or 7) added
            # unweighted.
            rd = (out.logits["rgb"] + out.logits[PRIVILEGED]) / 2
            rh = (out.logits["rgb"] + out.logits["hall"]) / 2
            return self._ce(rd, y) + self._ce(rh, y) + distill, parts
        return distill, parts

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self(batch)
        loss, parts = self.compute_loss(out, batch["label"])
        if not torch.isfinite(loss):
            raise NonFiniteError(
                f"{self.step_name}: training loss is {float(loss.detach())} at epoch "
                f"{self.current_epoch}, batch {batch_idx}; the step is stopped and not marked done "
                f"(try a lower train.lr)"
            )
        bs = batch["label"].shape[0]
        # sync_dist: under DDP the curves show the mean over every rank's batches, not rank 0's alone.
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        for k, v in parts.items():
            self.log(f"train/{k}_loss", v, on_step=True, on_epoch=True, batch_size=bs, sync_dist=True)
        if batch_idx == 0:  # the rate the epoch starts with (one value per epoch in the curves)
            self.log(
                "train/lr",
                self.trainer.optimizers[0].param_groups[0]["lr"],
                on_step=False,
                on_epoch=True,
                batch_size=bs,
                sync_dist=True,
            )
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self(batch)
        y = batch["label"]
        self.val_acc(out.fused.float(), y)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True, batch_size=y.shape[0])
        if self.needs_features:
            _, parts = self.compute_loss(out, y)
            self.log("val/hall_loss", parts["hall"], on_epoch=True, batch_size=y.shape[0], sync_dist=True)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        out = self(batch)
        rec = {"label": batch["label"].cpu(), "index": batch["index"].cpu(), "fused": out.fused.float().cpu()}
        rec.update({f"stream/{k}": v.float().cpu() for k, v in out.logits.items()})
        self.test_records.append(rec)

    def configure_optimizers(self):
        t = self.cfg.train
        params = [p for p in self.parameters() if p.requires_grad]
        opt: torch.optim.Optimizer
        if t.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay)
        else:
            cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
            fused = self.device.type == "cuda"  # one kernel for all parameters on the GPU; foreach on CPU
            opt = cls(params, lr=t.lr, weight_decay=t.weight_decay, fused=fused or None)
        if is_constant(t):
            return opt
        # Per optimizer step; its state is in the checkpoints, so a resumed step continues on the same curve.
        epochs = int(self.trainer.max_epochs or 1)  # the runner always sets it
        per_epoch = int(self.trainer.estimated_stepping_batches) // max(1, epochs)
        f = lr_factor(t.schedule, epochs, per_epoch, t.warmup_epochs, t.lr_drop_epoch, t.lr_drop_factor)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_fit_start(self) -> None:
        """On CUDA the weights take the channels-last layout of the activations (see models.preprocess)."""
        if self.device.type == "cuda":
            self.to(memory_format=torch.channels_last)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The global random states travel with the checkpoint (tensors and plain numbers only, so checkpoints
        still load with ``weights_only``). Batches and augmentation do not use them (see
        :class:`~modistill.training.sampler.EpochSampler`); anything else that does resumes where it stopped."""
        kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
        checkpoint["rng"] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(np.asarray(keys, np.int64)), pos, has_gauss, cached],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        from modistill.training.run import migrate_state

        checkpoint["state_dict"] = migrate_state(checkpoint["state_dict"])  # a checkpoint of an older run
        rng = checkpoint.get("rng")
        if rng is None:
            return
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        kind, keys, pos, has_gauss, cached = rng["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))

    def on_test_epoch_end(self) -> None:
        """Under DDP each rank saw a shard of the test set (padded with repeats): gather all shards and keep one
        record per video, so every rank holds the same complete results."""
        if self.trainer.world_size <= 1 or not self.test_records:
            return
        cat = {k: torch.cat([r[k] for r in self.test_records]) for k in self.test_records[0]}
        gathered = {
            k: cast(torch.Tensor, self.all_gather(v.to(self.device))).flatten(0, 1).cpu() for k, v in cat.items()
        }
        order = torch.argsort(gathered["index"], stable=True)
        idx = gathered["index"][order]
        first = torch.ones_like(idx, dtype=torch.bool)
        first[1:] = idx[1:] != idx[:-1]
        keep = order[first]
        self.test_records = [{k: v[keep] for k, v in gathered.items()}]

    def test_results(self) -> dict:
        """Accuracies of the fused (selection) logits and of every stream, with the per-video predictions."""
        cat = {k: torch.cat([r[k] for r in self.test_records]) for k in self.test_records[0]}
        y = cat["label"]
        logits = {"fused": cat["fused"]} | {k.split("/")[1]: v for k, v in cat.items() if k.startswith("stream/")}
        scores = {k: classification_scores(v, y, self.num_classes) for k, v in logits.items()}
        res = {
            "accuracy": scores["fused"]["top1"],
            "n": int(len(y)),
            "streams": {k: v["top1"] for k, v in scores.items() if k != "fused"},
            "scores": scores,
            "pred": cat["fused"].argmax(-1).tolist(),
            "label": y.tolist(),
            "index": cat["index"].tolist(),
            "stream_pred": {k: v.argmax(-1).tolist() for k, v in logits.items() if k != "fused"},
        }
        return res
