"""The pocket model's architecture: sizes of every part, as official config sections and real model classes.

One ``PocketSpec`` describes the whole model (``docs/pocket.md`` has the budget arithmetic):

* transformer: LTX-2.3 flavour (feature extractor V2, gated attention, cross-attention AdaLN, connectors at the
  DiT widths) because V2 maps the 19 Gemma-3-270M hidden states straight to the DiT widths; V1 would need a
  640 x 12160 aggregate (7.8 M parameters) before the DiT;
* video VAE: LTX-2 block kinds (``compress_*_res`` encoder, residual ``compress_all`` decoder), all encoder
  multipliers 1 (width 128 = latent channels), decoder base 8, no PixelNorm (``vae_norm`` "none");
* audio VAE: the released structure at ``ch`` 16; vocoder: LTX-2 HiFi-GAN (24 kHz) with the embedded tiny widths;
* spatial x2 latent upsampler: ``mid_channels`` 32, 2 blocks per stage; no refine LoRA (one set of weights for
  both stages, as the distilled releases do).

``PocketSpec.test()`` is the same structure at minute widths for the default test suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ltx2stream.models.audio import AudioVAE, AudioVAEConfig, VocoderConfig, build_vocoder
from ltx2stream.models.text import TextPathConfig
from ltx2stream.models.text.encoder import TextProjection
from ltx2stream.models.transformer import LTXAVModel
from ltx2stream.models.transformer.config import TransformerConfig
from ltx2stream.models.upsampler import LatentUpsampler
from ltx2stream.models.upsampler.config import UpsamplerConfig
from ltx2stream.models.video_vae import VideoVAE
from ltx2stream.models.video_vae.config import VideoVAEConfig

GEMMA_270M_HIDDEN = 640
GEMMA_270M_STATES = 19  # embedding output + 18 layers
LOG_MEL_INIT = -6.0  # about the mean log-mel of the world's sounds (silence is log(1e-5) = -11.5)


def _res(n: int = 1) -> list[Any]:
    return ["res_x", {"num_layers": n}]


def _c(name: str, multiplier: int = 1, **extra: Any) -> list[Any]:
    return [name, {"multiplier": multiplier, **extra}]


@dataclass(frozen=True)
class PocketSpec:
    """Every size of the pocket model; the defaults are the shipped model."""

    layers: int = 8
    heads: int = 4
    video_head_dim: int = 32
    audio_head_dim: int = 16
    connector_layers: int = 1
    registers: int = 32
    text_length: int = 64  # Gemma tokens per prompt (left padded); a multiple of ``registers``
    gemma_hidden: int = GEMMA_270M_HIDDEN
    gemma_states: int = GEMMA_270M_STATES
    vae_decoder_base: int = 8
    vae_encoder_res_layers: int = 1
    # "none": no PixelNorm in the VAE (an extension of the official kinds). At these widths the official
    # PixelNorm stalls training: it drops each location's magnitude, and the 8-64-channel streams cannot move
    # brightness and hue into directions fast enough (docs/pocket.md, "Video VAE recipe").
    vae_norm: str = "none"
    audio_ch: int = 16
    vocoder_channels: int = 64
    # the vocoder's upsampling rates (product 240: 24 kHz per 100 Hz mel frame); kernels 2 r (2 r + 1 for odd r)
    vocoder_rates: tuple[int, ...] = (6, 5, 8)
    upsampler_mid: int = 32
    upsampler_blocks: int = 2
    # the native clip: two-stage, final size and frames
    height: int = 256
    width: int = 256
    frames: int = 25
    fps: float = 12.0
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @staticmethod
    def test(gemma_hidden: int = 32, gemma_states: int = 3) -> PocketSpec:
        """The same structure at minute widths (tests; a tiny Gemma with ``gemma_hidden``)."""
        return PocketSpec(
            layers=1,
            heads=2,
            video_head_dim=8,
            audio_head_dim=4,
            registers=8,
            text_length=16,
            gemma_hidden=gemma_hidden,
            gemma_states=gemma_states,
            vae_decoder_base=8,
            audio_ch=4,
            vocoder_channels=32,
            upsampler_mid=32,
            upsampler_blocks=1,
            height=64,
            width=64,
            frames=9,
        )

    def with_gemma(self, hidden: int, states: int) -> PocketSpec:
        return replace(self, gemma_hidden=hidden, gemma_states=states)

    # ------------------------------------------------------------------ transformer + text path
    def transformer_config(self) -> TransformerConfig:
        h, v, a = self.heads, self.video_head_dim, self.audio_head_dim
        extra: dict[str, Any] = {
            "connector_positional_embedding_max_pos": [4096],
            "connector_num_learnable_registers": self.registers,
            "connector_apply_gated_attention": True,
            "connector_num_attention_heads": h,
            "connector_attention_head_dim": v,
            "connector_num_layers": self.connector_layers,
            "audio_connector_num_attention_heads": h,
            "audio_connector_attention_head_dim": a,
            "audio_connector_num_layers": self.connector_layers,
            "caption_projection_first_linear": False,
            "caption_projection_second_linear": False,
            "caption_proj_input_norm": False,
        }
        return TransformerConfig(
            num_layers=self.layers,
            num_attention_heads=h,
            attention_head_dim=v,
            audio_num_attention_heads=h,
            audio_attention_head_dim=a,
            cross_attention_dim=h * v,
            audio_cross_attention_dim=h * a,
            caption_channels=self.gemma_hidden,
            frequencies_precision="float64",
            rope_type="split",
            av_ca_timestep_scale_multiplier=1000.0,
            cross_attention_adaln=True,
            apply_gated_attention=True,
            caption_proj_before_connector=True,
            extra=extra,
        )

    def text_config(self) -> TextPathConfig:
        section = self.transformer_config().to_metadata()
        cfg = TextPathConfig.from_metadata(section, max_length=self.text_length)
        return cfg.with_gemma(self.gemma_hidden, self.gemma_states)

    # ------------------------------------------------------------------ codecs
    def vae_metadata(self) -> dict[str, Any]:
        r = _res(self.vae_encoder_res_layers)
        encoder = [_c("compress_space_res"), r, _c("compress_time_res"), _c("compress_all_res"), r,
                   _c("compress_all_res"), r]  # fmt: skip
        decoder = [_res(), _c("compress_all", 2, residual=True), _res(), _c("compress_all", 2, residual=True),
                   _res(), _c("compress_all", 2, residual=True), _res()]  # fmt: skip
        return {
            "dims": 3,
            "in_channels": 3,
            "out_channels": 3,
            "latent_channels": 128,
            "patch_size": 4,
            "norm_layer": self.vae_norm,
            "latent_log_var": "uniform",
            "encoder_blocks": encoder,
            "decoder_blocks": decoder,
            "decoder_base_channels": self.vae_decoder_base,
            "causal_decoder": False,
            "timestep_conditioning": False,
            "encoder_spatial_padding_mode": "zeros",
            "decoder_spatial_padding_mode": "reflect",
        }

    def vae_config(self) -> VideoVAEConfig:
        return VideoVAEConfig.from_metadata(self.vae_metadata())

    def audio_vae_config(self) -> AudioVAEConfig:
        return AudioVAEConfig(
            ch=self.audio_ch,
            ch_mult=(1, 2, 4),
            num_res_blocks=1,
            attn_resolutions=(),
            mid_block_add_attention=False,
        )

    def vocoder_config(self) -> VocoderConfig:
        from ltx2stream.models.audio.vocoder_config import GeneratorConfig

        # Three upsampling stages (x6, x5, x8 = the released 240 samples per mel frame) instead of the released
        # five (6, 5, 2, 2, 2): channels halve per stage, so at width 64 five stages leave 2 channels at 24 kHz.
        # Side by side from scratch, 10 CPU-minutes each (session 7, docs/pocket.md "The vocoder"), this one's tone
        # peaks came out at 0.30 of the clips' amplitude against 0.09.
        return VocoderConfig(
            vocoder=GeneratorConfig(
                upsample_rates=self.vocoder_rates,
                upsample_kernel_sizes=tuple(2 * r + r % 2 for r in self.vocoder_rates),
                upsample_initial_channel=self.vocoder_channels,
                resblock_kernel_sizes=(3, 5),
                resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)),
            )
        )

    def upsampler_config(self) -> UpsamplerConfig:
        return UpsamplerConfig(mid_channels=self.upsampler_mid, num_blocks_per_stage=self.upsampler_blocks)

    # ------------------------------------------------------------------ fresh modules (seeded)
    def build(self, part: str, seed: int) -> torch.nn.Module:
        """A freshly initialised part: transformer | text | video_vae | audio_vae | vocoder | upsampler."""
        torch.manual_seed(seed)
        builders = {
            "transformer": lambda: LTXAVModel(self.transformer_config()),
            "text": lambda: TextProjection(self.text_config()),
            "video_vae": lambda: VideoVAE(self.vae_config()),
            "audio_vae": lambda: AudioVAE(self.audio_vae_config()),
            "vocoder": lambda: build_vocoder(self.vocoder_config()),
            "upsampler": lambda: LatentUpsampler(self.upsampler_config()),
        }
        module = builders[part]()
        if part == "transformer":
            _zero_output_heads(module)
        if part == "text":  # the connectors' registers are torch.empty; the official init is U(-1, 1)
            with torch.no_grad():
                for conn in (module.video_connector, module.audio_connector):  # type: ignore[union-attr]
                    conn.learnable_registers.uniform_(-1.0, 1.0)
        if part == "audio_vae":  # start the decoder near the typical log-mel level instead of 0
            with torch.no_grad():
                module.decoder.conv_out.conv.bias.fill_(LOG_MEL_INIT)  # type: ignore[union-attr]
        return module.float().train()

    def checkpoint_config(self) -> dict[str, Any]:
        """The embedded ``config`` of the single-file checkpoint (official sections)."""
        return {
            "transformer": self.transformer_config().to_metadata(),
            "vae": self.vae_config().to_metadata(),
            "audio_vae": self.audio_vae_config().to_metadata(),
            "vocoder": self.vocoder_config().to_metadata(),
        }


def _zero_output_heads(model: torch.nn.Module) -> None:
    """DiT-style init: output projections start at zero so the first steps predict the mean velocity."""
    with torch.no_grad():
        for name in ("proj_out", "audio_proj_out"):
            head = getattr(model, name)
            head.weight.zero_()
            head.bias.zero_()


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
