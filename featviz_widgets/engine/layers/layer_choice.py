"""The layers a person would choose first: stages and blocks, a few dozen at most.

One rule for every network, read from its module tree and the probe:

1. Start at the top: the children that ran and have a spatial output (feature map or tokens)
   and are either blocks (modules with sub-modules) or activations. Where only one such child
   exists (``features``, ``encoder.layers``), go into it.
2. A *stage* is a module that is exactly its children run one after another (each takes the
   previous one's output; the first takes the stage's input, the last gives its output):
   ``layer1`` of a ResNet, a Swin or ConvNeXt stage, VGG's ``features``. A stage offers its
   children too (without the last, whose output is the stage's). Stages are opened level by
   level while the whole level fits the budget; blocks that are not stages (a residual block,
   an Inception module, a dense block) are units and stay closed.
3. Transformer blocks (token or channels-last activations) also offer their MLP's hidden
   activation, the widest activation inside them (Ghiasi et al. 2022: the units of a ViT that
   are interpretable), when all of them fit the budget.

Each chosen layer gets a group for a dropdown: the stage that offered it (a stage heads its
own group), a block for its MLP activation, else the module the top level lies in.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from torch import nn

from .layouts import HWC, SPATIAL, TOKENS
from .probe import ProbeRecord

BUDGET = 48  # a few dozen layers at most
ALL_WHEN_AT_MOST = 12  # small networks offer every spatial layer
ACTIVATIONS = frozenset(
    {"ReLU", "ReLU6", "GELU", "SiLU", "Swish", "Hardswish", "HardSwish", "LeakyReLU", "ELU", "Mish", "PReLU"}
    | {"QuickGELU", "GELUTanh", "CELU", "SELU", "Softplus"}
)

Layouts = Mapping[str, tuple[str, int]]  # name -> (layout, channels)


class _Tree:
    def __init__(self, net: nn.Module, records: Mapping[str, ProbeRecord], layouts: Layouts) -> None:
        self.modules = dict(net.named_modules())
        self.records = records
        self.layouts = layouts

    def ran(self, name: str) -> list[str]:
        """Children of ``name`` that ran, in call order; children that never ran themselves
        (ModuleList, ModuleDict) stand for theirs."""
        out: list[str] = []
        for child, _ in self.modules[name].named_children():
            full = f"{name}.{child}" if name else child
            if full in self.records:
                out.append(full)
            elif any(True for _ in self.modules[full].children()):
                out.extend(self.ran(full))
        return sorted(out, key=lambda n: self.records[n].start)

    def composite(self, name: str) -> bool:
        return any(True for _ in self.modules[name].children())

    def activation(self, name: str) -> bool:
        return type(self.modules[name]).__name__ in ACTIVATIONS

    def offered(self, name: str) -> bool:
        layout = self.layouts.get(name)
        return layout is not None and layout[0] in SPATIAL and (self.composite(name) or self.activation(name))

    def is_stage(self, name: str) -> bool:
        kids = self.ran(name)
        rec = self.records.get(name)
        if rec is None or len(kids) < 1 or rec.in_key is None:
            return False
        if self.records[kids[0]].in_key != rec.in_key or self.records[kids[-1]].out_key != rec.out_key:
            return False
        return all(
            self.records[b].in_key is not None and self.records[b].in_key == self.records[a].out_key
            for a, b in itertools.pairwise(kids)
        )

    def mlp_hidden(self, block: str) -> str | None:
        """The widest token/channels-last activation inside ``block``, wider than its output."""
        own = self.layouts.get(block)
        if own is None:
            return None
        best, width = None, own[1]
        prefix = block + "."
        for name in self.modules:
            if name.startswith(prefix) and self.activation(name) and name in self.layouts:
                layout, chans = self.layouts[name]
                if layout in (TOKENS, HWC) and chans > width:
                    best, width = name, chans
        return best


def choose(net: nn.Module, records: Mapping[str, ProbeRecord], layouts: Layouts) -> dict[str, str]:
    """The chosen layers, name -> group, by the rule in this module's docstring."""
    spatial = [n for n in records if n and n in layouts and layouts[n][0] in SPATIAL]
    if len(spatial) <= ALL_WHEN_AT_MOST:
        return {n: "" for n in spatial}
    tree = _Tree(net, records, layouts)
    top = ""
    while True:
        level = [k for k in tree.ran(top) if tree.offered(k)]
        if len(level) == 1 and tree.composite(level[0]):
            top = level[0]
            continue
        break
    chosen = {n: top for n in level}  # name -> group
    owner: dict[str, str] = {}  # a stage's child -> that stage (its group)
    blocks = list(level)
    while level:
        nxt: list[tuple[str, str]] = []
        opened: list[str] = []
        for name in level:
            if not tree.is_stage(name):
                continue
            kids = tree.ran(name)
            wanted = [k for k in kids if tree.offered(k)]
            opened.extend(wanted)
            owner.update((k, name) for k in wanted)
            nxt.extend((k, name) for k in wanted if k != kids[-1])
        if len(chosen) + len(nxt) > BUDGET:
            break
        blocks.extend(opened)
        for name, stage in nxt:
            chosen[name] = chosen[stage] = stage  # an opened stage heads its own group
        if not nxt:
            break
        level = [n for n, _ in nxt]
    hidden = {}
    for block in blocks:
        mlp = tree.mlp_hidden(block)
        if mlp is not None and mlp not in chosen:
            hidden[mlp] = owner.get(block, block)
    if hidden and len(chosen) + len(hidden) <= BUDGET:
        for name, group in hidden.items():
            chosen[name] = group
            if group in chosen:
                chosen[group] = group
    return chosen or {n: "" for n in spatial}
