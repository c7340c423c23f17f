"""Causal video VAE of LTX-2 / LTX-2.3: encoder, decoder, latent statistics, tiled and progressive decoding."""

from ltx2stream.models.video_vae.blocks import CausalConv3d, PixelNorm, ResnetBlock3D, UNetMidBlock3D
from ltx2stream.models.video_vae.config import BlockSpec, VideoVAEConfig
from ltx2stream.models.video_vae.decoder import VideoDecoder
from ltx2stream.models.video_vae.encoder import VideoEncoder
from ltx2stream.models.video_vae.loading import load_video_vae, video_vae_checkpoint_tensors
from ltx2stream.models.video_vae.sampling import DepthToSpaceUpsample, SpaceToDepthDownsample
from ltx2stream.models.video_vae.stream import spatial_radius, stream_decoder, temporal_lookahead
from ltx2stream.models.video_vae.tiling import TilingConfig, decode_progressive, decode_tiled
from ltx2stream.models.video_vae.tiny import tiny_video_vae_config, tiny_video_vae_metadata
from ltx2stream.models.video_vae.vae import PerChannelStatistics, VideoVAE

__all__ = [
    "BlockSpec",
    "CausalConv3d",
    "DepthToSpaceUpsample",
    "PerChannelStatistics",
    "PixelNorm",
    "ResnetBlock3D",
    "SpaceToDepthDownsample",
    "TilingConfig",
    "UNetMidBlock3D",
    "VideoDecoder",
    "VideoEncoder",
    "VideoVAE",
    "VideoVAEConfig",
    "decode_progressive",
    "decode_tiled",
    "load_video_vae",
    "spatial_radius",
    "stream_decoder",
    "temporal_lookahead",
    "tiny_video_vae_config",
    "tiny_video_vae_metadata",
    "video_vae_checkpoint_tensors",
]
