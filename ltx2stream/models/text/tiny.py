"""Tiny random text path for tests: a tiny Gemma 3 (transformers config + safetensors + offline tokenizer)
and a random feature extractor + connectors of the real classes.

The tokenizer is a byte-level BPE trained in code on a fixed corpus (any prompt tokenizes; ids 0..3 are
pad / eos / bos / unk as in Gemma), so nothing is downloaded. Everything is deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    Gemma3Config,
    Gemma3ForCausalLM,
    Gemma3ForConditionalGeneration,
    Gemma3TextConfig,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
)

from ltx2stream.models.text.config import TextPathConfig, tiny_text_config
from ltx2stream.models.text.encoder import TextProjection

SPECIAL_TOKENS = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
)
TINY_VOCAB = 320
TINY_HIDDEN = 32
TINY_LAYERS = 2
_CORPUS = (
    "A red fox runs through the snowy forest at dawn, its breath visible in the cold air.",
    "The camera slowly pans across a quiet harbour where fishing boats rock on gentle waves.",
    "A woman in a yellow raincoat laughs as she walks her dog along a busy city street.",
    "Close-up of hands kneading bread dough on a floured wooden table, warm kitchen light.",
    "An old man plays the violin on a bridge while pigeons fly over the river at sunset.",
    "Waves crash against black rocks; seagulls call; wind hisses through the tall grass.",
    "A child blows out candles on a birthday cake and everyone claps and cheers.",
    "Drone shot over green mountains, clouds drifting, a narrow road winding into the valley.",
)


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE (vocab 320) with a BOS post-processor, left padding, Gemma-like special ids."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer)
    bos = tok.token_to_id("<bos>")
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
    )


def tiny_gemma_text_config(vocab_size: int = TINY_VOCAB) -> Gemma3TextConfig:
    """Hidden 32, 2 layers (one sliding-window, one full attention: both code paths run), 2 heads / 1 KV head."""
    return Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=TINY_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        max_position_embeddings=1024,
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )


def write_tiny_gemma(directory: str | Path, seed: int = 0, *, multimodal: bool = False) -> Path:
    """Write a random tiny Gemma 3 (config.json + model.safetensors + tokenizer files) to ``directory``.

    ``multimodal=True`` writes a ``Gemma3ForConditionalGeneration`` with a tiny SigLIP tower, the layout of the
    released Gemma-3-12B; otherwise a text-only ``Gemma3ForCausalLM``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    text_cfg = tiny_gemma_text_config(len(tokenizer))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if multimodal:
            model = Gemma3ForConditionalGeneration(_tiny_multimodal_config(text_cfg, tokenizer))
        else:
            model = Gemma3ForCausalLM(text_cfg)
        _randomize_norms(model, seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _tiny_multimodal_config(text_cfg: Gemma3TextConfig, tokenizer: PreTrainedTokenizerFast) -> Gemma3Config:
    vision = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS[4:]}
    return Gemma3Config(
        text_config=text_cfg.to_dict(),
        vision_config=vision.to_dict(),
        mm_tokens_per_image=4,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
    )


def _randomize_norms(model: torch.nn.Module, seed: int) -> None:
    """Gemma norms are initialised to 0 (scale 1 + w); give them small random values so they are exercised."""
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def tiny_text_projection(
    flavour: str = "ltx2", seed: int = 0, cfg: TextPathConfig | None = None
) -> TextProjection:
    """Random feature extractor + connectors of ``tiny_text_config(flavour)`` (or ``cfg``)."""
    cfg = cfg or tiny_text_config(flavour)
    g = torch.Generator().manual_seed(seed)
    model = TextProjection(cfg)
    with torch.no_grad():
        for p in model.feature_extractor.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
    model.video_connector.init_weights(g)
    model.audio_connector.init_weights(g)
    return model.eval()
