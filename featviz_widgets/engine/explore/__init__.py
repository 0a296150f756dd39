"""Analyses on top of rendering: comparisons, galleries, exemplars, photo dreams, directions."""

from __future__ import annotations

from .bases import DEFAULT_METHODS, LEARNED, BasesTable, Comparison, Row, answer, compare_bases, judge_layer
from .collect import (
    SKIMAGE_PROBES,
    Collection,
    DirectionsError,
    ImagesArg,
    Reservoir,
    collect,
    crop_boxes,
    embed,
    iter_images,
    probe_images,
)
from .direction_views import DirectionSheet, directions_from_photos, directions_gallery, grid, groups_sheet
from .directions import (
    METHODS,
    NEGATIVE,
    ClippedActivationsWarning,
    MissingExtraError,
    find_directions,
    fit_directions,
    load_directions,
    load_sklearn,
)
from .exemplars import Exemplar, photo_crops, top_exemplars
from .groups import NeuronGroups, neuron_groups
from .measures import MEASURES, chance_coherence, coherence, selectivity, top_per_source, two_afc
from .photo_dream import StayClose, deepdream_photo
from .sanity import SanityReadout, earlier_layers, sanity_readout
from .sheets import PerImage, Progress, Sheet, run_steps
from .studies import GALLERY_CACHE_SIZE, compare_directions, direction_from_photos, interpolate, layer_gallery

__all__ = [
    "DEFAULT_METHODS",
    "GALLERY_CACHE_SIZE",
    "LEARNED",
    "MEASURES",
    "METHODS",
    "NEGATIVE",
    "SKIMAGE_PROBES",
    "BasesTable",
    "ClippedActivationsWarning",
    "Collection",
    "Comparison",
    "DirectionSheet",
    "DirectionsError",
    "Exemplar",
    "ImagesArg",
    "MissingExtraError",
    "NeuronGroups",
    "PerImage",
    "Progress",
    "Reservoir",
    "Row",
    "SanityReadout",
    "Sheet",
    "StayClose",
    "answer",
    "chance_coherence",
    "coherence",
    "collect",
    "compare_bases",
    "compare_directions",
    "crop_boxes",
    "deepdream_photo",
    "direction_from_photos",
    "directions_from_photos",
    "directions_gallery",
    "earlier_layers",
    "embed",
    "find_directions",
    "fit_directions",
    "grid",
    "groups_sheet",
    "interpolate",
    "iter_images",
    "judge_layer",
    "layer_gallery",
    "load_directions",
    "load_sklearn",
    "neuron_groups",
    "photo_crops",
    "probe_images",
    "run_steps",
    "sanity_readout",
    "selectivity",
    "top_exemplars",
    "top_per_source",
    "two_afc",
]
