"""``hf-hub:REPO[@REVISION]`` names read from the local Hugging Face cache, offline: ImageNet weights for a stream
and exported models for ``predict`` share one lookup and one message when the cache lacks them."""

from __future__ import annotations

from pathlib import Path

from modistill.errors import UserError

HF_SCHEME = "hf-hub:"


def cached(spec: str, filename: str | None = None) -> Path:
    """The cached ``filename`` of the repository ``spec`` names, or its whole snapshot folder; one line saying how
    to fetch it where it is missing. Nothing is downloaded."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    repo, _, revision = spec.removeprefix(HF_SCHEME).partition("@")
    try:
        if filename is not None:
            path = hf_hub_download(repo, filename, revision=revision or None, local_files_only=True)
        else:
            path = snapshot_download(repo, revision=revision or None, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError):
        what = f"{repo} {filename}" if filename else repo
        raise UserError(
            f"{spec}: not in the local Hugging Face cache; fetch it once where there is network: "
            f"hf download {what} (HF_HOME sets the folder)"
        ) from None
    except HFValidationError as e:
        raise UserError(f"{spec}: not a Hub repository id ({str(e).splitlines()[0]})") from None
    return Path(path)
