"""Sequence parallelism for the DiT on plain ``torch.distributed`` (Ulysses all-to-all over heads).

Layer: beside ``models`` (imports only ``models``); the pipeline receives the wrapped transformer as its
``Components.transformer``. See ``docs/deploy.md`` (multi-GPU section).
"""

from ltx2stream.parallel.transformer import SequenceParallelTransformer, shard_modality

__all__ = ["SequenceParallelTransformer", "shard_modality"]
