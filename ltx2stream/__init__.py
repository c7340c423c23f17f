"""ltx2stream: a streaming long-video session server for the LTX-2 family of audio+video diffusion models."""

__version__ = "0.1.0"
