"""Exact streaming (temporal-chunk) execution of the video decoder, in bounded memory.

Every temporal operation of the decoder is a kernel-3 convolution; everything else acts on each frame alone
(PixelNorm, SiLU, AdaLN, depth-to-space, unpatchify). So the decoder can run as a chain of pull-based
generators: each convolution keeps the last two input frames as state, replicates the first frame in front
once and the last frame behind once (non-causal) exactly like the one-shot padding, and emits every output
frame whose inputs have arrived. Residual branches queue their frames until the convolution branch catches up.
The arithmetic per output frame is the one-shot arithmetic, so the concatenated chunks equal
``VideoDecoder.forward`` up to float rounding (convolution kernels may sum in another order for another input
length).

Items flowing between stages are ``(frames, last)``; ``frames`` is never empty and ``last`` marks the end of
the sequence. Every stage cuts its work into pieces of about one element budget (``piece_budget``: a few
frames of the last, highest-resolution activation), so the working set of every stage stays bounded however
long the segment is, while the cheap latent-resolution stages still run on many frames per kernel call.

Not streamable: GroupNorm (``norm_layer=group_norm`` or the ``norm3`` of ``res_x_y``) normalises over all
frames; ``VideoVAEConfig.decoder_streamable`` is False for those configs and callers fall back to one-shot
decoding.

Latency: a non-causal decoder looks ahead one frame per convolution, so its first output frame depends on the
next ~R latent frames (R = ``temporal_lookahead(cfg)``; 21.6 for LTX-2, 13.5 for LTX-2.3). Output therefore
starts once min(R, all) latent frames have passed the low-resolution stages, and then flows in pieces.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.models.video_vae.blocks import CausalConv3d, ResnetBlock3D, UNetMidBlock3D
from ltx2stream.models.video_vae.config import STRIDES, VideoVAEConfig
from ltx2stream.models.video_vae.decoder import VideoDecoder
from ltx2stream.models.video_vae.sampling import DepthToSpaceUpsample, depth_to_space, unpatchify

Item = tuple[torch.Tensor, bool]  # (frames [B, C, f>=1, H, W], last piece of the sequence)


class FrameQueue:
    """FIFO of frames along dim 2 (residual branches wait here for their convolution branch)."""

    def __init__(self) -> None:
        self.parts: list[torch.Tensor] = []

    def push(self, x: torch.Tensor) -> None:
        self.parts.append(x)

    def pop(self, n: int) -> torch.Tensor:
        out: list[torch.Tensor] = []
        while n > 0:
            head = self.parts[0]
            take = min(n, head.shape[2])
            out.append(head[:, :, :take])
            if take == head.shape[2]:
                self.parts.pop(0)
            else:  # a short remainder is copied so that it does not keep the whole piece's storage alive
                rest = head[:, :, take:]
                self.parts[0] = rest.clone() if 2 * rest.shape[2] < head.shape[2] else rest
            n -= take
        return out[0] if len(out) == 1 else torch.cat(out, dim=2)


def _apply(fn: Callable[[torch.Tensor], torch.Tensor], holder: list[torch.Tensor]) -> torch.Tensor:
    """fn(holder.pop()): the caller keeps no reference to the input while the output travels downstream."""
    return fn(holder.pop())


def map_items(fn: Callable[[torch.Tensor], torch.Tensor], items: Iterable[Item]) -> Iterator[Item]:
    """Per-frame stage (norm, activation, AdaLN...)."""
    for x, last in items:
        holder = [x]
        del x
        yield _apply(fn, holder), last


class Budget:
    """Elements per piece, read each time a stage cuts one: a stream can start with small pieces, so that its
    first output leaves early, and ``grow()`` to its working size once that is out (pieces already cut keep
    their size; every later cut uses the new one). The output does not depend on the piece sizes."""

    def __init__(self, first: int, then: int | None = None) -> None:
        self.elements = first
        self._then = first if then is None else then

    def grow(self) -> None:
        self.elements = self._then


def piece_frames(x: torch.Tensor, channels_out: int, budget: int | Budget) -> int:
    """Frames per piece so that a piece of ``x`` ([B, C, f, H, W]) and of its output each hold <= ~``budget``
    elements (at least one frame). Sizing by the output too keeps depth-to-space stages (4x channels) bounded."""
    b, c, _, h, w = x.shape
    elements = budget.elements if isinstance(budget, Budget) else budget
    return max(1, elements // (b * max(c, channels_out) * h * w))


def drop_frames(items: Iterable[Item], n: int) -> Iterator[Item]:
    """The item stream without its first ``n`` frames (``n`` less than the stream's length)."""
    for x, last in items:
        if n > 0:
            take = min(n, x.shape[2])
            n -= take
            if take == x.shape[2]:
                if last:
                    raise ValueError("drop_frames: the whole stream was dropped")
                continue
            x = x[:, :, take:]
        yield x, last


def stream_conv(
    conv: CausalConv3d, items: Iterable[Item], causal: bool, budget: int | Budget, offset: int = 0
) -> Iterator[Item]:
    """Stream a stride-1 CausalConv3d: same temporal padding as ``conv.forward``; pieces of ~``budget`` elements.

    Between pieces only the last ``k-1`` input frames are kept (as a copy), never the consumed input.
    ``offset`` > 0: the items start at that input frame (the earlier ones were skipped), so there is no front
    padding and the output starts at frame ``offset + front`` (``conv_offset``).
    """
    front, back = conv.time_padding(causal)
    keep = conv.kernel_t - 1
    state: torch.Tensor | None = None
    for x, last in items:
        parts = (([x[:, :, :1]] * front if offset == 0 else []) + [x] if state is None else [state, x]) + (
            [x[:, :, -1:]] * back if last else []
        )
        buf = torch.cat(parts, dim=2)  # [B, C, state + f (+ pad), H, W]
        del x, parts
        n_out = buf.shape[2] - keep
        if n_out <= 0:
            state = buf
            continue
        state = buf[:, :, n_out:].clone()
        max_frames = piece_frames(buf, conv.conv.out_channels, budget)
        for start in range(0, n_out, max_frames):
            stop = min(start + max_frames, n_out)
            holder = [buf[:, :, start : stop + keep]]
            if stop == n_out:
                del buf  # the last piece's view is now the only reference
            yield _apply(conv.padded, holder), last and stop == n_out


def stream_resnet(
    block: ResnetBlock3D,
    items: Iterable[Item],
    causal: bool,
    embed: torch.Tensor | None,
    budget: int | Budget,
    offset: int = 0,
) -> Iterator[Item]:
    ada = block.ada_values(embed)
    skip = FrameQueue()
    front = block.conv1.time_padding(causal)[0]
    discard = 2 * front if offset else 0  # shortcut frames whose outputs are skipped (offset > 0)

    def main_branch() -> Iterator[Item]:
        for x, last in items:
            skip.push(block.shortcut(x))
            holder = [x]
            del x
            yield _apply(lambda t: block.pre_conv1(t, ada), holder), last

    h = stream_conv(block.conv1, main_branch(), causal, budget, offset)
    h = map_items(lambda t: block.pre_conv2(t, ada), h)
    for t, last in stream_conv(block.conv2, h, causal, budget, offset + front if offset else 0):
        if discard:
            skip.pop(discard)
            discard = 0
        out = [skip.pop(t.shape[2]) + t]
        del t
        yield out.pop(), last


def stream_upsample(
    block: DepthToSpaceUpsample, items: Iterable[Item], causal: bool, budget: int | Budget, offset: int = 0
) -> Iterator[Item]:
    inputs = FrameQueue()  # the residual is expanded per piece, from the input frames the piece was made of

    def source() -> Iterator[Item]:
        for x, last in items:
            if block.residual:
                inputs.push(x)
            yield x, last

    first = True
    front = block.conv.time_padding(causal)[0]
    for y, last in stream_conv(block.conv, source(), causal, budget, offset):
        if first and offset and block.residual:
            inputs.pop(front)  # input frames whose conv outputs are skipped
        n = y.shape[2]  # conv output frame j belongs to input frame j (stride 1)
        y = depth_to_space(y, block.stride)  # [B, C·p, f, h, w] -> [B, C, f·p1, h·p2, w·p3]
        if block.residual:
            y = y + block.residual_of(inputs.pop(n))
        if first and block.drops_first_frame and not offset:
            y = y[:, :, 1:]
        first = False
        out = [y]
        del y
        yield out.pop(), last


def _stages(decoder: VideoDecoder) -> list[tuple[str, torch.nn.Module]]:
    """The decoder as a chain of streamable stages: ("conv" | "res" | "up", module); per-frame maps omitted."""
    stages: list[tuple[str, torch.nn.Module]] = [("conv", decoder.conv_in)]
    for block in decoder.up_blocks:
        if isinstance(block, UNetMidBlock3D):
            stages += [("res", res) for res in block.res_blocks]
        elif isinstance(block, DepthToSpaceUpsample):
            stages.append(("up", block))
        else:
            raise ConfigError(
                f"decoder block {type(block).__name__} cannot be streamed (GroupNorm over all frames); "
                f"decode configs with decoder_streamable False in one shot",
                code=codes.CONFIG_UNSUPPORTED_VALUE,
            )
    return stages + [("conv", decoder.conv_out)]


def _front(kind: str, module: torch.nn.Module, causal: bool) -> int:
    conv = module if kind == "conv" else module.conv1 if kind == "res" else module.conv  # type: ignore[union-attr]
    return conv.time_padding(causal)[0]  # type: ignore[union-attr,operator,no-any-return]


def _output_offset(kind: str, module: torch.nn.Module, causal: bool, offset: int) -> int:
    """First output frame of a stage whose input starts at frame ``offset`` (0: the sequence's start)."""
    if offset == 0:
        return 0
    f = _front(kind, module, causal)
    if kind == "conv":
        return offset + f
    if kind == "res":
        return offset + 2 * f
    p = module.stride[0]  # type: ignore[union-attr,index]
    return (offset + f) * p - (1 if module.drops_first_frame else 0)  # type: ignore[union-attr,operator]


def skip_plan(decoder: VideoDecoder, skip: int) -> list[int]:
    """Input start frame of every stage (``_stages``) such that the decoder's output starts at or before
    frame ``skip``, each as late as possible: the work on frames that only feed skipped output (the trimmed
    span of a continued segment) is never done. The temporal convolutions still see one frame of real context
    on each side (a start > 0 means no front padding), so every output frame from ``skip`` on is exact."""
    causal = decoder.causal
    stages = _stages(decoder)
    plan = [0] * len(stages)
    need = skip
    for i in range(len(stages) - 1, -1, -1):
        kind, module = stages[i]
        f = _front(kind, module, causal)
        if kind == "conv":
            start = need - f
        elif kind == "res":
            start = need - 2 * f
        else:
            p, d = module.stride[0], (1 if module.drops_first_frame else 0)  # type: ignore[union-attr,index]
            start = (need + d) // p - f
        plan[i] = max(0, start)
        need = plan[i]
    return plan


def stream_decoder(
    decoder: VideoDecoder,
    latent_chunks: Iterable[torch.Tensor],
    scaled_t: torch.Tensor | None,
    budget: int | Budget,
    skip: int = 0,
) -> Iterator[torch.Tensor]:
    """Un-normalised latent chunks (in order, non-empty) -> pixel chunks [B, 3, f, H, W], exact.

    ``scaled_t``: ``decoder.scaled_timestep(...)`` for the whole batch (None when unconditioned). Every stage
    processes pieces of about ``budget`` elements of its input (at least one frame): the high-resolution
    stages, where memory goes, work on a few frames at a time, the latent-resolution ones on many (efficient
    kernels). ``skip`` > 0: the chunks start at output frame ``skip`` (less than the output's length), and
    each stage starts as late as that allows (``skip_plan``).
    """
    causal = decoder.causal
    dtype = decoder.conv_in.conv.weight.dtype
    stages = _stages(decoder)
    plan = skip_plan(decoder, skip) if skip > 0 else [0] * len(stages)
    x: Iterable[Item] = _mark_last(c.to(dtype) for c in latent_chunks)
    at = 0  # first frame of the stream x
    embeds: dict[int, torch.Tensor | None] = {}
    for (kind, module), start in zip(stages, plan, strict=True):
        if start > at:
            x = drop_frames(x, start - at)
        if kind == "conv" and module is decoder.conv_out:
            x = map_items(lambda t: decoder.output_head(t, scaled_t), x)
        if kind == "conv":
            x = stream_conv(module, x, causal, budget, start)  # type: ignore[arg-type]
        elif kind == "res":
            mid = next(
                b for b in decoder.up_blocks if isinstance(b, UNetMidBlock3D) and module in b.res_blocks
            )
            if id(mid) not in embeds:
                embeds[id(mid)] = mid.embed(scaled_t, dtype)
            x = stream_resnet(module, x, causal, embeds[id(mid)], budget, start)  # type: ignore[arg-type]
        else:
            x = stream_upsample(module, x, causal, budget, start)  # type: ignore[arg-type]
        at = _output_offset(kind, module, causal, start)
    if skip > at:
        x = drop_frames(x, skip - at)
    yield from (t for t, _ in map_items(lambda t: unpatchify(t, decoder.patch_size), x))


def piece_budget(decoder: VideoDecoder, latent_shape: Sequence[int], pixel_frames: int) -> int:
    """Elements per piece: ``pixel_frames`` frames of the decoder's last-level (highest-resolution) activation
    (``conv_out``'s input), so the last stages yield about ``pixel_frames`` frames per piece whatever the width
    of ``conv_out``'s patch output (wider than the activation in narrow decoders: then pieces are shorter)."""
    b, _, _, h, w = latent_shape
    scale = math.prod(blk.stride[1] for blk in decoder.up_blocks if isinstance(blk, DepthToSpaceUpsample))
    width = decoder.conv_out.conv.in_channels
    return b * width * (h * scale) * (w * scale) * pixel_frames


def _mark_last(chunks: Iterable[torch.Tensor]) -> Iterator[Item]:
    """Tag each chunk with whether it is the last one (one chunk of lookahead on the *input* only)."""
    it = iter(chunks)
    prev = next(it, None)
    for nxt in it:
        yield prev, False
        prev = nxt
    if prev is not None:
        yield prev, True


def temporal_lookahead(cfg: VideoVAEConfig) -> float:
    """Latent frames a non-causal decoder output frame looks ahead (= its temporal receptive radius).

    Each kernel-3 conv adds one frame at its own rate; temporal ×2 stages halve the cost of later convs.
    0 for a causal decoder.
    """
    if cfg.causal_decoder:
        return 0.0
    rate, total = 1, 1.0  # conv_in
    for spec, _, _ in cfg.decoder_channels():
        if spec.name == "res_x":
            total += 2 * spec.num_layers / rate
        elif spec.name == "res_x_y":
            total += 2 / rate
        else:
            total += 1 / rate
            rate *= STRIDES[spec.name][0]
    return total + 1 / rate  # conv_out


def spatial_radius(cfg: VideoVAEConfig) -> float:
    """Latent cells a decoder output pixel sees on each side (spatial receptive radius, same rule in space)."""
    scale, total = 1, 1.0
    for spec, _, _ in cfg.decoder_channels():
        if spec.name == "res_x":
            total += 2 * spec.num_layers / scale
        elif spec.name == "res_x_y":
            total += 2 / scale
        else:
            total += 1 / scale
            scale *= STRIDES[spec.name][1]
    return total + 1 / scale
