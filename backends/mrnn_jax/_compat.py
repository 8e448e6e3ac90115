"""The framework APIs this backend uses outside JAX's and equinox's stable surface, in one place.

Each is wrapped here and tested in ``tests/jax/test_jax_compat.py``, so an
upgrade of JAX or equinox that moves or changes one fails there, and only
there; the rest of :mod:`mrnn_jax` calls these wrappers.

- :func:`is_traced`: ``isinstance(x, jax.core.Tracer)``. ``jax.core`` is the
  namespace JAX is emptying (``jax.core._deprecations`` lists names on their
  way out); ``Tracer`` is still exported, and no public API tells a traced
  value from a concrete one as cheaply (one ``isinstance``, at trace time).
  Used to take static fast paths when arrays are concrete (block plans,
  one shared ``alpha``) and to refuse ``check_finite`` on traced states.
- :func:`bracketed_doc`: the document a Module's ``__pdoc__`` hook returns.
  Equinox (0.12 and later) prints pytrees with wadler_lindig, its own
  dependency rather than ours, and asks each object for ``__pdoc__``; the
  models use it so that a model inside another pytree prints its summary.
"""

import jax


def is_traced(x) -> bool:
    """True when ``x`` is a tracer (inside ``jit``, ``vmap``, ``grad``...): its values are unknown."""
    return isinstance(x, jax.core.Tracer)


def bracketed_doc(name: str, lines: list[str], indent: int):
    """``name(line; line; ...)`` as a wadler_lindig document: one line if it fits, else one per line."""
    import wadler_lindig as wl

    return wl.bracketed(begin=wl.TextDoc(f"{name}("), docs=[wl.TextDoc(line) for line in lines],
                        sep=wl.BreakDoc("; "), end=wl.TextDoc(")"), indent=indent)
