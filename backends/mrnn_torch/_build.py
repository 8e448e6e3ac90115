"""Building: ``add_*``, ``freeze`` and ``finalize_*`` edit the model's
:class:`mrnn_core.NetworkSpec` (validated by the core, so a refused call
changes nothing), then hand it to ``_adopt`` / ``_set_spec``, or the drawn
matrices to ``_set_recurrent`` / ``_set_input``."""

from __future__ import annotations

from mrnn_core import (
    MRNNConfigError,
    Streams,
    balance_ei,
    effective_weight,
    init_input_weight,
    init_recurrent_weight,
    input_structure,
    recurrent_structure,
    scale_to_spectral_radius,
    unit_tau,
)
from mrnn_core.dynamics import check_alpha

from .region import plain


class BuildMixin:
    """``add_*``, ``freeze`` / ``unfreeze`` and ``finalize_*`` of :class:`~mrnn_torch.mRNNBase`."""

    # building ----------------------------------------------------------------

    def _check_open(self, call: str, side: str, why: str | None = None) -> None:
        if side not in self._open_sides():
            raise MRNNConfigError(
                f"{call}: {side} connectivity is already finalised; "
                + (why or f"add every {side} region and connection before finalising it")
                + " (a config finalises each side whose connections it lists, unless "
                  "config_finalize=False)"
            )

    def add_recurrent_region(self, name: str, num_units: int, sign: str = "pos",
                             base_firing=0.0, init=0.0, device=None,
                             parent_region: str | None = None, learnable_bias: bool = False,
                             *, tau: float | None = None, learnable_tau: bool = False,
                             learnable_init: bool = False, trainable: bool = True) -> None:
        """Append a recurrent region of ``num_units`` units (``H`` grows by that).

        ``sign`` (``pos``/``exc`` or ``neg``/``inhib``) is the sign of its
        outgoing weights under Dale's law; ``base_firing`` (``b``) and ``init``
        (initial pre-activation) are one number or one per unit;
        ``parent_region`` groups regions under one name; ``learnable_bias``
        makes ``b`` a trained parameter. ``device`` is accepted for mRNNTorch
        code and ignored: the model's device rules.

        Beyond mRNNTorch: ``tau`` is the region's own time constant (ms; its
        units then step with ``alpha = dt / tau``; ``None`` uses the model's
        ``tau``); ``learnable_tau`` trains it per unit (as ``log_tau``);
        ``learnable_init`` trains ``init``; ``trainable=False`` freezes every
        weight into the region (its rows of ``W_rec`` and ``W_inp``).
        """
        call = f"add_recurrent_region({name!r})"
        self._check_regions_open(call)
        self._add_regions(call, self._spec.with_recurrent_region(
            name, num_units, sign=sign, base_firing=plain(base_firing), init=plain(init),
            parent_region=parent_region, learnable_bias=learnable_bias, tau=tau,
            learnable_tau=learnable_tau, learnable_init=learnable_init, trainable=trainable))

    def add_ei_area(self, name: str, num_units: int, exc_pct: float = 0.8, **region_fields) -> None:
        """Append an E/I area: regions ``<name>_exc`` (sign ``pos``,
        ``round(exc_pct * num_units)`` units) and ``<name>_inh`` (sign ``neg``,
        the rest), both with ``parent_region=name`` (nn4n's ``exc_pct``).

        ``region_fields`` are :meth:`add_recurrent_region` keywords given to
        both (``base_firing``/``init`` of ``num_units`` numbers are split).
        Connections naming ``name`` expand to its two populations.
        """
        call = f"add_ei_area({name!r})"
        self._check_regions_open(call)
        region_fields.pop("device", None)
        for key in ("base_firing", "init"):
            if key in region_fields:
                region_fields[key] = plain(region_fields[key])
        self._add_regions(call, self._spec.with_ei_area(name, num_units, exc_pct, **region_fields))

    def _check_regions_open(self, call: str) -> None:
        self._check_open(call, "recurrent")
        self._check_open(call, "input", "W_inp has one row per recurrent unit, so recurrent "
                                        "regions must all be added before finalising it")

    def _add_regions(self, call: str, spec) -> None:
        """Adopt ``spec``, which adds recurrent regions, if every unit's alpha stays safe."""
        check_alpha(unit_tau(spec, self.dynamics), self.dynamics, where=call, spec=spec)
        self._adopt(spec)

    def add_input_region(self, name: str, num_units: int, sign: str = "pos", device=None) -> None:
        """Append an input region of ``num_units`` channels (``I`` grows by that).
        ``device`` is accepted and ignored: the model's device rules."""
        self._check_open(f"add_input_region({name!r})", "input")
        self._adopt(self._spec.with_input_region(name, num_units, sign))

    def add_recurrent_connection(self, src_region: str, dst_region: str,
                                 sparsity: float | None = None, zero_connection: bool = False,
                                 *, density: float | None = None, mask=None,
                                 trainable: bool = True, routes=None) -> None:
        """Declare the projection ``src_region -> dst_region`` between recurrent regions.

        ``sparsity`` ``s`` is the fraction of each source unit's weights
        removed (``ceil(s * n_dst)`` per column; mRNNTorch's behaviour);
        ``None`` is dense. Masks and weights are drawn at finalisation.

        Beyond mRNNTorch: ``density`` ``p`` keeps each entry independently
        with probability ``p`` (nn4n's rule); ``mask`` is an explicit 0/1
        block ``[n_dst, n_src]`` (array-like or tensor); at most one of
        ``sparsity``, ``density`` and ``mask``. ``trainable=False`` freezes
        the block. A parent name (an E/I area) on either side declares one
        connection per pair of its regions; ``routes`` (some of ``"E->E"``,
        ``"E->I"``, ``"I->E"``, ``"I->I"``; default all) keeps the pairs
        whose source and destination signs match.
        """
        self._check_open(f"add_recurrent_connection({src_region!r}, {dst_region!r})", "recurrent")
        self._adopt(self._spec.with_recurrent_connection(
            src_region, dst_region, sparsity, zero_connection, density=density, mask=mask,
            trainable=trainable, routes=routes))

    def add_input_connection(self, src_region: str, dst_region: str,
                             sparsity: float | None = None, zero_connection: bool = False,
                             *, density: float | None = None, mask=None,
                             trainable: bool = True, routes=None) -> None:
        """Declare the projection from input region ``src_region`` to recurrent
        region (or parent) ``dst_region``; the other arguments as in
        :meth:`add_recurrent_connection` (``routes`` filters by the
        destination's sign: ``"E->E"``/``"I->E"`` reach excitatory regions)."""
        self._check_open(f"add_input_connection({src_region!r}, {dst_region!r})", "input")
        self._adopt(self._spec.with_input_connection(
            src_region, dst_region, sparsity, zero_connection, density=density, mask=mask,
            trainable=trainable, routes=routes))

    # freezing ----------------------------------------------------------------

    def freeze(self, *targets):
        """Freeze projections: their weights get exactly zero gradient.

        A target is a recurrent region or parent name (every projection into
        it, recurrent and input; later connections into it are frozen too) or
        a ``(src, dst)`` pair of names (parents expand). Works before and
        after finalising. **Returns:** the model (changed in place).
        """
        self._set_spec(self._spec.with_frozen(*targets))
        return self

    def unfreeze(self, *targets):
        """Undo :meth:`freeze` for ``targets`` (same forms). **Returns:** the model."""
        self._set_spec(self._spec.with_trainable(*targets, trainable=True))
        return self

    # finalising --------------------------------------------------------------

    def finalize_connectivity(self) -> None:
        """Finalise whichever of the recurrent and input sides is still open."""
        self.finalize_rec_connectivity()
        self.finalize_inp_connectivity()

    def finalize_rec_connectivity(self) -> None:
        """Draw ``W_rec``'s mask, signs and initial weights (undeclared blocks
        zero); then balance E/I input if ``balance_ei`` and scale to
        ``spectral_radius`` if set. A no-op once done."""
        if self.rec_finalized:
            return
        streams = Streams.from_seed(self.seed)
        mask, sign = recurrent_structure(self._spec, streams.recurrent_mask)
        W = init_recurrent_weight(self._spec, self.dynamics.rec_constrained,
                                  streams.recurrent_weight)
        eff = lambda W: effective_weight(W, mask, sign, self.dynamics.rec_constrained)  # noqa: E731
        if self.dynamics.balance_ei:
            W = balance_ei(W, eff(W))
        if self.dynamics.spectral_radius is not None:
            W = scale_to_spectral_radius(W, eff(W), self.dynamics.spectral_radius)
        self._set_recurrent(W, mask, sign)

    def finalize_inp_connectivity(self) -> None:
        """Draw ``W_inp``'s mask, signs and initial weights. A no-op once done."""
        if self.inp_finalized:
            return
        streams = Streams.from_seed(self.seed)
        mask, sign = input_structure(self._spec, streams.input_mask)
        W = init_input_weight(self._spec, self.dynamics.inp_constrained, streams.input_weight)
        self._set_input(W, mask, sign)

    def _open_sides(self) -> list[str]:
        """The sides (``"recurrent"``, ``"input"``) not finalised yet."""
        return [side for side, done in (("recurrent", self.rec_finalized),
                                        ("input", self.inp_finalized)) if not done]

    def _check_finalised(self, side: str, what: str) -> None:
        open_ = [s for s in self._open_sides() if side in (s, "both")]
        if open_:
            raise MRNNConfigError(
                f"{type(self).__name__}: cannot compute {what} before finalising: "
                f"{' and '.join(open_)} connectivity is still open; call "
                f"finalize_connectivity() after adding every region and connection"
            )
