"""Forward-call shape checks shared by every backend, so all reject alike.

They take shapes (tuples) only, never arrays, so no framework is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MRNNConfigError


@dataclass(frozen=True)
class CallShape:
    """What a forward call's inputs imply: batch size, steps, and batchedness."""

    batch: int
    steps: int
    batched: bool


def _layout(batch_first: bool, batched: bool, last: str) -> str:
    if not batched:
        return f"[T, {last}]"
    return f"[B, T, {last}]" if batch_first else f"[T, B, {last}]"


def check_call_shapes(*, hidden_size: int, input_size: int, batch_first: bool,
                      inp=None, state=None, state_name: str = "x0", h0=None,
                      stim_input=None, W_rec=None, eps_x=None, eps_u=None) -> CallShape:
    """Check one forward call's shapes and return its :class:`CallShape`.

    **Arguments:** the shapes (tuples, or None when absent) of ``inp``
    (``[B, T, I]`` if ``batch_first`` else ``[T, B, I]``, or ``[T, I]``
    unbatched), the initial ``state`` (``[B, H]`` or ``[H]``; called
    ``state_name`` in messages), ``h0``, ``stim_input`` and ``eps_x`` (the
    output layout, feature size ``H``), ``eps_u`` (the input layout), and
    ``W_rec`` (``[H, H]``).

    Raises :class:`MRNNConfigError` saying what was expected and what was got.
    """
    H, I = hidden_size, input_size
    if inp is None and I > 0:
        raise MRNNConfigError(f"inp: expected an input of feature size I = {I}, got None")
    time_source = inp if inp is not None else stim_input
    if time_source is None:
        raise MRNNConfigError(
            "inp: this network has no input region, but the number of steps is "
            "unknown; pass inp with feature size 0 (e.g. shape [B, T, 0]) or stim_input"
        )
    source_name = "inp" if inp is not None else "stim_input"
    rank = len(time_source)
    if rank not in (2, 3):
        raise MRNNConfigError(
            f"{source_name}: expected a 3-D tensor {_layout(batch_first, True, 'I' if inp is not None else 'H')} "
            f"(or 2-D {_layout(batch_first, False, 'I' if inp is not None else 'H')} unbatched), "
            f"got {rank}-D shape {tuple(time_source)}"
        )
    batched = rank == 3
    if batched:
        B, T = (time_source[0], time_source[1]) if batch_first else (time_source[1], time_source[0])
    else:
        B, T = 1, time_source[0]

    def expect(name, shape, last, last_name):
        if shape is None:
            return
        want = ((B, T) if batch_first else (T, B)) if batched else (T,)
        want = want + (last,)
        if tuple(shape) != want:
            raise MRNNConfigError(
                f"{name}: expected shape {want} = {_layout(batch_first, batched, last_name)} "
                f"with {last_name} = {last} (batch_first={batch_first}), got {tuple(shape)}"
            )

    expect("inp", inp, I, "I")
    expect("stim_input", stim_input, H, "H")
    expect("eps_x", eps_x, H, "H")
    expect("eps_u", eps_u, I, "I")
    for name, shape in ((state_name, state), ("h0", h0)):
        if shape is None:
            continue
        want = (B, H) if batched else (H,)
        if tuple(shape) != want:
            layout = "[B, H]" if batched else "[H]"
            raise MRNNConfigError(
                f"{name}: expected shape {want} = {layout} with H = {H}, got {tuple(shape)}"
            )
    if W_rec is not None and tuple(W_rec) != (H, H):
        raise MRNNConfigError(f"W_rec: expected shape ({H}, {H}) = [H, H], got {tuple(W_rec)}")
    return CallShape(batch=B, steps=T, batched=batched)
