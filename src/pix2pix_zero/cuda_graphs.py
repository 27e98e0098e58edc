"""CUDA graphs for pure tensor functions made of many small kernels. Pure torch.

On a GPU the inversion's noise regularizer is thousands of tiny kernels per step (rolls, means,
products over a 4-level pyramid, 25 gradient steps): the GPU waits on kernel launches, not on
arithmetic. A CUDA graph records those launches once and replays them with one call, on the same
inputs giving the same result as the eager calls.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: list[Tensor]  # static buffers the graph reads
    output: Tensor  # static buffer the graph writes


class GraphedFunction:
    """Calls `fn(*tensors) -> Tensor` through one CUDA graph per input signature (shapes, dtypes, device).

    `fn` must be a pure function of its tensor arguments, with no host synchronisation. The first call with a new
    signature warms up and captures; later calls copy the inputs into the graph's buffers and replay. Tensors on
    the CPU, or a capture that fails (the reason is warned once), run `fn` eagerly.
    """

    def __init__(self, fn: Callable[..., Tensor]) -> None:
        self.fn = fn
        self.captured: dict[tuple, _Captured | None] = {}  # None: capture failed, run eagerly

    def __call__(self, *tensors: Tensor) -> Tensor:
        if not tensors[0].is_cuda:
            return self.fn(*tensors)
        key = tuple((tuple(t.shape), t.dtype, t.device) for t in tensors)
        if key not in self.captured:
            self.captured[key] = self._capture(tensors)
        entry = self.captured[key]
        if entry is None:
            return self.fn(*tensors)
        for buffer, tensor in zip(entry.inputs, tensors):
            buffer.copy_(tensor)
        entry.graph.replay()
        return entry.output.clone()  # the next replay overwrites the static output

    def _capture(self, tensors: tuple[Tensor, ...]) -> _Captured | None:
        inputs = [t.clone() for t in tensors]
        try:
            side = torch.cuda.Stream()  # warm-up on a side stream, as torch.cuda.graph's docs require
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    self.fn(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                output = self.fn(*inputs)
        except RuntimeError as error:
            warnings.warn(
                f"CUDA graph capture of {getattr(self.fn, '__name__', self.fn)!r} failed, running eagerly: {error}",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        return _Captured(graph, inputs, output)
