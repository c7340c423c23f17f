"""The LTX-2.5 diffusion video VAE: conv encoder, neighbourhood-attention decoder with two Euler pixel steps."""

from ltx2stream.models.video_vae.diffusion.config import DiffusionDecoderConfig, is_diffusion_vae
from ltx2stream.models.video_vae.diffusion.vae import DiffusionVideoVAE

__all__ = ["DiffusionDecoderConfig", "DiffusionVideoVAE", "is_diffusion_vae"]
