"""``lookalike ingest --ray``: the options of the Ray ingest and the choice of runner. Ray is imported only when
``--ray`` is given (:mod:`lookalike.catalog.ray_ingest`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

import typer

__all__ = ["RayActorsOpt", "RayAddressOpt", "RayCpusOpt", "RayOpt", "ingest_runner"]


def _needs_ray(value: bool) -> bool:
    from lookalike.catalog.ray_ingest import RAY_EXTRA, ray_available

    if value and not ray_available():
        raise typer.BadParameter(f"Ray is not installed: {RAY_EXTRA}")
    return value


RayOpt = Annotated[
    bool,
    typer.Option(
        "--ray",
        callback=_needs_ray,
        help="Prepare and embed on a Ray cluster ($RAY_ADDRESS or --ray-address, else a local one); this process "
        "writes. Needs the ray extra.",
    ),
]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="With --ray: the cluster to join (default: $RAY_ADDRESS).")
]
RayActorsOpt = Annotated[
    int | None,
    typer.Option("--ray-actors", min=1, help="With --ray: embedding actors (default: cluster CPUs / --ray-cpus)."),
]
RayCpusOpt = Annotated[
    float, typer.Option("--ray-cpus", min=0.25, help="With --ray: CPUs per actor (its model's threads).")
]


def ingest_runner(cat: Any, ray: bool, address: str | None, actors: int | None, cpus: float) -> Callable[..., Any]:
    """``cat.ingest``, or the Ray ingest of ``cat`` with these options (called as ``cat.ingest`` is)."""
    if not ray:
        return cat.ingest  # type: ignore[no-any-return]
    from lookalike.catalog.ray_ingest import RayOptions, ray_ingest

    return functools.partial(ray_ingest, cat, options=RayOptions(address, actors, cpus))
