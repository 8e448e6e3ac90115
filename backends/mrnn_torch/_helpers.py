"""mRNNTorch's analysis helpers on a model: region lookup, weight blocks, spectra.

A mixin of :class:`mrnn_torch.mRNNBase`; the region arithmetic itself lives once,
for every backend, in :mod:`mrnn_core.regions` (``region_activity``,
``projection``, ``weight_subset``), applied to the model's layout and
effective weights.

Region order, documented once: :meth:`get_region_activity` returns regions
**in the order the caller names them**; :meth:`get_weight_subset`,
:meth:`get_projection` (within a parent) and :meth:`combine_states` use
**network order**. Parent names expand to their children everywhere.
"""

from __future__ import annotations

import torch

from mrnn_core import MRNNConfigError, effective_weight
from mrnn_core.regions import projection, region_activity, region_indices, weight_subset


class RegionHelpers:
    """The mRNNTorch methods that read a model's layout and weights."""

    # names -------------------------------------------------------------------

    @property
    def hid_regions(self) -> list[str]:
        """Recurrent region names, in network order."""
        return list(self.region_dict)

    @property
    def inp_regions(self) -> list[str]:
        """Input region names, in network order."""
        return list(self.inp_dict)

    def named_rec_regions(self, prefix: str = ""):
        """Yield ``(prefix + name, region)`` for every recurrent region, in order."""
        for name, region in self.region_dict.items():
            yield prefix + name, region

    def named_inp_regions(self, prefix: str = ""):
        """Yield ``(prefix + name, region)`` for every input region, in order."""
        for name, region in self.inp_dict.items():
            yield prefix + name, region

    def get_excluded_hid_regions(self, *names: str) -> list[str]:
        """The recurrent regions not named (parents expand), in network order."""
        return self._layout.excluded(*names)

    def get_excluded_inp_regions(self, *names: str) -> list[str]:
        """The input regions not named, in network order."""
        return self._layout.excluded(*names, inputs=True)

    # indices and activity ----------------------------------------------------

    def get_region_indices(self, region: str) -> tuple[int, int]:
        """``(start, end)`` of a recurrent region in the hidden vector, or of an
        input region in the input vector. A parent name is an error."""
        return region_indices(self._layout, region)

    def get_region_size(self, region: str) -> int:
        """Number of units of a recurrent or input region (a parent counts all
        its children)."""
        return int(self._layout.unit_indices(region, allow_input=True).size)

    def get_region_activity(self, act: torch.Tensor, *names: str) -> torch.Tensor:
        """``act`` ``[..., H]`` restricted to the named recurrent regions.

        Regions come in the order the caller names them, parents expanded to
        their children; no names returns ``act``. **Returns:** ``[..., n]``.
        """
        return region_activity(self._layout, act, *names)

    def combine_states(self, states_a: torch.Tensor, states_b: torch.Tensor,
                       region_list_a, region_list_b, keep_dims: bool = True) -> torch.Tensor:
        """Interleave two partial states ``[..., n_a]``, ``[..., n_b]`` into ``[..., H]``.

        ``states_a`` holds the regions of ``region_list_a`` laid out in the
        order of that list (as :meth:`get_region_activity` returns them), and
        likewise for ``b``; the lists (parents expand) must be disjoint and
        together cover every recurrent region. The result is in network
        order; ``keep_dims=False`` flattens the leading dimensions, ``[N, H]``.
        """
        perm = self._layout.combine_index(region_list_a, region_list_b,
                                          states_a.shape, states_b.shape)
        index = torch.as_tensor(perm, device=states_a.device)
        full = torch.cat([states_a, states_b], dim=-1).index_select(-1, index)
        return full if keep_dims else full.reshape(-1, full.shape[-1])

    # weights -----------------------------------------------------------------

    def _effective(self, side: str) -> torch.Tensor:
        """``W_rec_eff`` or ``W_inp_eff`` of a finalised side."""
        self._check_finalised(side, f"effective {side} weights")
        if side == "recurrent":
            return effective_weight(self.W_rec, self.W_rec_mask, self.W_rec_sign_matrix,
                                    self.dynamics.rec_constrained)
        return effective_weight(self.W_inp, self.W_inp_mask, self.W_inp_sign_matrix,
                                self.dynamics.inp_constrained)

    def get_weight_subset(self, *names: str, W: torch.Tensor | None = None) -> torch.Tensor:
        """The square block among the named recurrent regions, in network order.

        ``W`` defaults to the effective ``W_rec`` (masked, and under Dale's law
        when constrained); no names returns the whole matrix.
        """
        W = self._effective("recurrent") if W is None else W
        return weight_subset(self._layout, W, *names)

    def get_projection(self, to: str, from_: str) -> torch.Tensor:
        """The effective weights from ``from_`` to ``to``, ``[n_to, n_from]``.

        Either side may be a parent; ``from_`` may be an input region (the
        block then comes from ``W_inp``). The mask applies whether or not the
        weights are constrained, exactly as in the forward pass.
        """
        side = "input" if from_ in self.inp_dict else "recurrent"
        return projection(self._layout, self._effective(side), to, from_)

    def apply_dales_law(self, W_rec: torch.Tensor, W_rec_mask: torch.Tensor,
                        W_rec_sign_matrix: torch.Tensor) -> torch.Tensor:
        """``mask * |W| * sign``: each source's weights take its region's sign."""
        return effective_weight(W_rec, W_rec_mask, W_rec_sign_matrix, True)

    def gen_w(self, dict_) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(W, mask, sign)`` assembled from the connection blocks of ``dict_``.

        Columns are the regions of ``dict_`` (``region_dict`` or ``inp_dict``),
        rows the recurrent regions, each in network order; a block a region
        does not declare is zero.
        """
        rows = list(self.region_dict.items())

        def block(src, dst_name, dst, field):
            c = src.connections.get(dst_name)
            value = None if c is None else getattr(c, field)
            return self._zeros(dst.num_units, src.num_units) if value is None else value

        def assemble(field):
            columns = [torch.cat([block(src, n, dst, field) for n, dst in rows]
                                 or [self._zeros(0, src.num_units)], dim=0)
                       for src in dict_.values()]
            return torch.cat(columns or [self._zeros(self.total_num_units, 0)], dim=1)

        return tuple(assemble(f) for f in ("parameter", "weight_mask", "sign_matrix"))

    def compute_spectral_radius(self, weight: torch.Tensor) -> torch.Tensor:
        """``max |eig(weight)|`` of a square matrix, as a scalar tensor."""
        return torch.linalg.eigvals(weight).abs().max()

    def set_spectral_radius(self, W: torch.Tensor, W_tmp: torch.Tensor | None = None) -> torch.Tensor:
        """``W * spectral_radius / rho``, ``rho`` the spectral radius of ``W_tmp``
        (default ``W``).

        Pass the effective matrix as ``W_tmp`` to scale raw weights so the
        effective ones reach ``model.spectral_radius``; the factor is positive,
        so Dale's signs are kept.
        """
        target = self.spectral_radius
        if target is None:
            raise MRNNConfigError(
                "set_spectral_radius: model.spectral_radius is None; set it first "
                "(e.g. model.spectral_radius = 0.9)"
            )
        rho = self.compute_spectral_radius(W if W_tmp is None else W_tmp)
        if rho == 0:
            raise MRNNConfigError(
                "set_spectral_radius: the matrix has spectral radius 0 (no recurrent loop), "
                "so it cannot be scaled to a nonzero radius"
            )
        return W * (target / rho)
