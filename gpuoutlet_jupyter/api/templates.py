"""The six machine templates gpuoutlet wires in today (sheet section 4; no templates endpoint exists)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Template:
    """One ``templateId``: what the pod holds and the web ports its software listens on."""

    id: str
    title: str
    contents: str
    #: Ports the template's own software serves (reach them through an SSH tunnel).
    ports: tuple[int, ...] = ()
    #: What the vendor says about ports when it gives no number.
    ports_note: str | None = None
    default: bool = False


TEMPLATES: Final = (
    Template(
        "ubuntu-24-04",
        "Ubuntu 24.04",
        "Ubuntu 24.04 with CUDA drivers only",
        default=True,
    ),
    Template("pytorch", "PyTorch", "Ubuntu + CUDA + PyTorch 2.x + transformers + accelerate"),
    Template(
        "vllm",
        "vLLM",
        "vLLM inference server preloaded; the model is given with --model org/name",
        ports_note="not stated by gpuoutlet",
    ),
    Template("ollama", "Ollama", "Ollama daemon, ready for `ollama pull`", ports=(11434,)),
    Template("a1111", "Stable Diffusion WebUI", "AUTOMATIC1111 Stable Diffusion WebUI", (7860,)),
    Template("text-gen-webui", "text-generation-webui", "oobabooga text-generation-webui", (7860,)),
)
TEMPLATE_IDS: Final = tuple(t.id for t in TEMPLATES)
DEFAULT_TEMPLATE: Final = next(t.id for t in TEMPLATES if t.default)


def template(template_id: str) -> Template | None:
    """The template with that id, or None."""
    return next((t for t in TEMPLATES if t.id == template_id), None)
