"""Cross-attention access through diffusers attention processors. The only module that touches
diffusers' `Attention` internals.

`hooked_cross_attention(unet, recorder)` wraps the processor of every cross-attention layer,
chosen by key (`...attn2.processor`), never by class name (the authors' code broke when diffusers
renamed CrossAttention, pix2pix-zero #32). A wrapped layer runs its previous processor (the fused
SDPA kernel) except while the recorder is recording, when it computes the softmax explicitly so
the probabilities, and their gradients, are available. Self-attention is never touched. The
previous processors come back on exit, exceptions included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from .guidance import AttentionMaps, MapsComplete


def is_cross_attention_key(key: str) -> bool:
    """diffusers names cross-attention processors '<block path>.attn2.processor' in SD UNets."""
    return key.endswith("attn2.processor")


def is_encoder_cross_attention_key(key: str) -> bool:
    """Cross-attention of the down blocks and the mid block (the UNet's encoder half and bottleneck)."""
    return is_cross_attention_key(key) and key.startswith(("down_blocks.", "mid_block."))


GUIDED_LAYERS: dict[str, Callable[[str], bool]] = {"all": is_cross_attention_key, "encoder": is_encoder_cross_attention_key}


def is_transformer_attention_key(key: str) -> bool:
    """Self- (attn1) and cross-attention (attn2) of the UNet's transformer blocks (prompt-to-prompt hooks both)."""
    return key.endswith(("attn1.processor", "attn2.processor"))


class AttentionRecorder:
    """Holds the cross-attention maps of the most recent recorded UNet call, keyed by layer."""

    def __init__(self) -> None:
        self.maps: AttentionMaps = {}
        self.is_recording = False
        self.stop_when_complete = False
        self.last_rows: int | None = None  # record only the batch's last rows; the others keep the fused kernel
        self.expected_layers: set[str] = set()
        self.injected: AttentionMaps = {}  # layer key -> maps that replace the computed ones (prompt-to-prompt)
        self.injected_rows: slice = slice(None)

    @contextmanager
    def injecting(self, maps: AttentionMaps, rows: slice = slice(None)) -> Iterator[None]:
        """Replace the attention probabilities of these layers, on these batch rows, by `maps` (broadcast)."""
        self.injected, self.injected_rows = maps, rows
        try:
            yield
        finally:
            self.injected, self.injected_rows = {}, slice(None)

    @contextmanager
    def recording(self, stop_when_complete: bool = False, last_rows: int | None = None) -> Iterator[None]:
        """Record the hooked layers' maps; with `stop_when_complete`, end the forward (raise `MapsComplete`) as soon
        as every hooked layer has recorded; with `last_rows`, record only the batch's last rows (a branch sharing
        the call with others)."""
        self.maps, self.is_recording, self.stop_when_complete, self.last_rows = {}, True, stop_when_complete, last_rows
        try:
            yield
        finally:
            self.is_recording = self.stop_when_complete = False
            self.last_rows = None

    def take(self) -> AttentionMaps:
        """Return and forget the recorded maps; fail loudly if a hooked layer did not fire."""
        missing = self.expected_layers - self.maps.keys()
        if missing:
            raise RuntimeError(f"cross-attention layers did not record a map: {sorted(missing)}")
        maps, self.maps = self.maps, {}
        return maps


class CrossAttentionProcessor:
    """A diffusers attention processor that records softmax(QKᵀ/√d) when asked, else defers to `fallback`."""

    def __init__(self, key: str, recorder: AttentionRecorder, fallback: Callable[..., Tensor]) -> None:
        self.key, self.recorder, self.fallback = key, recorder, fallback

    def __call__(
        self,
        attn: Any,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        temb: Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Tensor:
        injected = self.recorder.injected.get(self.key)
        if not self.recorder.is_recording and injected is None:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        replace = None if injected is None else (injected, self.recorder.injected_rows)
        unrecorded = hidden_states.shape[0] - (self.recorder.last_rows or hidden_states.shape[0])
        if unrecorded > 0 and injected is None:  # rows that are not recorded keep the fused kernel
            head = [_rows(z, slice(None, unrecorded)) for z in (hidden_states, encoder_hidden_states, attention_mask, temb)]
            tail = [_rows(z, slice(unrecorded, None)) for z in (hidden_states, encoder_hidden_states, attention_mask, temb)]
            probs, out = explicit_attention(attn, *tail)
            out = torch.cat([self.fallback(attn, *head, *args, **kwargs), out])
        else:
            probs, out = explicit_attention(attn, hidden_states, encoder_hidden_states, attention_mask, temb, replace)
        if self.recorder.is_recording:
            self.recorder.maps[self.key] = probs
            if self.recorder.stop_when_complete and self.recorder.expected_layers <= self.recorder.maps.keys():
                raise MapsComplete
        return out


def _rows(batch: Tensor | None, rows: slice) -> Tensor | None:
    return None if batch is None else batch[rows]


def explicit_attention(
    attn: Any, hidden_states: Tensor, encoder_hidden_states: Tensor | None, attention_mask: Tensor | None, temb: Tensor | None,
    replace: tuple[Tensor, slice] | None = None,
) -> tuple[Tensor, Tensor]:
    """diffusers' classic attention (AttnProcessor) returning (probs (B, heads, N, T), output).

    `replace` = (maps (b, heads, N, T), rows): those batch rows use `maps` instead of their own probabilities.
    """
    residual = hidden_states
    if attn.spatial_norm is not None:
        hidden_states = attn.spatial_norm(hidden_states, temb)
    input_ndim = hidden_states.ndim
    if input_ndim == 4:
        batch, channel, height, width = hidden_states.shape
        hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
    batch, seq_len, _ = hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
    attention_mask = attn.prepare_attention_mask(attention_mask, seq_len, batch)
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

    query = attn.to_q(hidden_states)
    if encoder_hidden_states is None:
        encoder_hidden_states = hidden_states
    elif attn.norm_cross:
        encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
    key, value = attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
    query, key, value = (attn.head_to_batch_dim(z) for z in (query, key, value))  # (B·heads, N, d)

    probs = attn.get_attention_scores(query, key, attention_mask)  # (B·heads, N, T), softmax in fp32 if upcast
    if replace is not None:
        maps, rows = replace
        grid = probs.unflatten(0, (batch, attn.heads)).clone()
        grid[rows] = maps.to(grid.dtype).expand_as(grid[rows])
        probs = grid.flatten(0, 1)
    out = attn.batch_to_head_dim(torch.bmm(probs, value))  # (B, N, heads·d)
    out = attn.to_out[1](attn.to_out[0](out))  # linear projection, dropout
    if input_ndim == 4:
        out = out.transpose(-1, -2).reshape(batch, channel, height, width)
    if attn.residual_connection:
        out = out + residual
    out = out / attn.rescale_output_factor
    return probs.unflatten(0, (batch, attn.heads)), out


@contextmanager
def hooked_cross_attention(unet: Any, recorder: AttentionRecorder, select: Callable[[str], bool] = is_cross_attention_key) -> Iterator[AttentionRecorder]:
    """Install recording processors on the selected layers for the duration of the block, then restore."""
    previous = dict(unet.attn_processors)  # set_attn_processor wants every layer's processor
    chosen = [key for key in previous if select(key)]
    if not chosen:
        raise RuntimeError("the UNet has no cross-attention layers matching the selection (keys ending 'attn2.processor')")
    unet.set_attn_processor(
        {key: CrossAttentionProcessor(key, recorder, proc) if key in chosen else proc for key, proc in previous.items()}
    )
    recorder.expected_layers = set(chosen)
    try:
        yield recorder
    finally:
        unet.set_attn_processor(dict(previous))  # a fresh dict: set_attn_processor pops from what it is given
        recorder.expected_layers = set()


def is_decoder_self_attention_key(key: str) -> bool:
    """Self-attention (attn1) of the UNet's decoder half, where Plug-and-Play and MasaCtrl take the reference's."""
    return key.endswith("attn1.processor") and key.startswith("up_blocks.")


class SelfAttentionSharer:
    """Hands the reference branch's self-attention maps to the edit branch (Plug-and-Play, Tumanyan et al. 2023).

    The maps are carried as the reference's queries and keys: softmax(Q_ref K_refᵀ/√d) applied to the edit's own
    values is the reference's map on the edit's content, at O(pixels · channels) memory instead of O(pixels²) and
    with the fused attention kernel. Within `sharing(capture_last=n)` the last n batch rows' queries and keys are
    kept for the next call; within `sharing(inject=rows)` the first len(rows) batch rows use the kept ones
    (row i takes kept row rows[i]). Both may act in one call: the kept ones change when the call ends.
    """

    def __init__(self) -> None:
        self.kept: dict[str, tuple[Tensor, Tensor]] = {}
        self.captured: dict[str, tuple[Tensor, Tensor]] = {}
        self.capture_last: int | None = None
        self.inject: Tensor | None = None

    @contextmanager
    def sharing(self, capture_last: int | None = None, inject: Tensor | None = None) -> Iterator[None]:
        if inject is not None and not self.kept:
            raise RuntimeError("no reference self-attention was captured before the edit asked for it")
        self.capture_last, self.inject, self.captured = capture_last, inject, {}
        try:
            yield
        finally:
            self.capture_last, self.inject = None, None
        if capture_last is not None:
            self.kept, self.captured = self.captured, {}


class SharedSelfAttentionProcessor:
    """A diffusers attention processor for self-attention layers: defers to `fallback` unless the sharer is active."""

    def __init__(self, key: str, sharer: SelfAttentionSharer, fallback: Callable[..., Tensor]) -> None:
        self.key, self.sharer, self.fallback = key, sharer, fallback

    def __call__(self, attn: Any, hidden_states: Tensor, encoder_hidden_states: Tensor | None = None,
                 attention_mask: Tensor | None = None, temb: Tensor | None = None, *args: Any, **kwargs: Any) -> Tensor:
        sharer = self.sharer
        if (sharer.capture_last is None and sharer.inject is None) or encoder_hidden_states is not None:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch, seq_len, _ = hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, seq_len, batch).view(batch, attn.heads, -1, seq_len)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        if sharer.capture_last is not None:
            sharer.captured[self.key] = (query[-sharer.capture_last:].detach(), key[-sharer.capture_last:].detach())
        if sharer.inject is not None:
            kept_query, kept_key = sharer.kept[self.key]
            rows = sharer.inject.to(query.device)
            query = torch.cat([kept_query[rows].to(query.dtype), query[len(rows):]])
            key = torch.cat([kept_key[rows].to(key.dtype), key[len(rows):]])
        query, key, value = (z.view(batch, -1, attn.heads, z.shape[-1] // attn.heads).transpose(1, 2) for z in (query, key, value))
        out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=attn.scale)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * value.shape[-1])
        out = attn.to_out[1](attn.to_out[0](out))
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


@contextmanager
def shared_self_attention(unet: Any, sharer: SelfAttentionSharer,
                          select: Callable[[str], bool] = is_decoder_self_attention_key) -> Iterator[SelfAttentionSharer]:
    """Install sharing processors on the selected self-attention layers for the duration of the block, then restore
    the previous processors (exceptions included)."""
    previous = dict(unet.attn_processors)
    chosen = [key for key in previous if select(key)]
    if not chosen:
        raise RuntimeError("the UNet has no self-attention layers matching the selection (keys ending 'attn1.processor')")
    unet.set_attn_processor(
        {key: SharedSelfAttentionProcessor(key, sharer, proc) if key in chosen else proc for key, proc in previous.items()}
    )
    try:
        yield sharer
    finally:
        unet.set_attn_processor(dict(previous))
