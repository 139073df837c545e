"""The test protocols, one row each: title, MSER preset, how to run it on a visible and an infrared side, and how
its plain results select the best epoch. Datasets name their protocol (`mcja.data.registry`); the engine, the
reports and the figures look it up here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from mcja.evaluation.evaluate import both_directions
from mcja.evaluation.llcm import llcm_protocol
from mcja.evaluation.mser import MSER_PRESETS, MserParams
from mcja.evaluation.regdb import regdb_protocol
from mcja.evaluation.side import Side
from mcja.evaluation.sysu import SYSU_SETTINGS, sysu_protocol, sysu_whole_gallery

Results = dict[str, dict[str, Any]]  # row (setting or direction) -> metrics


@dataclass(frozen=True)
class ProtocolRun:
    """What a protocol run needs besides the two sides."""

    perm: Any = None  # SYSU-MM01's rand_perm_cam (None: the whole gallery, not the standard trials)
    trials: int = 10  # SYSU-MM01 / LLCM gallery trials
    full: bool = True  # False: only the setting that selects the best epoch (SYSU-MM01 all-search single-shot)
    progress: bool = False


def _sysu(visible: Side, infrared: Side, mser: MserParams | None, run: ProtocolRun) -> Results:
    if run.perm is None:
        return sysu_whole_gallery(infrared, visible, mser, modes=("all", "indoor") if run.full else ("all",))
    settings = SYSU_SETTINGS if run.full else SYSU_SETTINGS[:1]
    return sysu_protocol(infrared, visible, run.perm, settings, run.trials, mser, run.progress)


def _regdb(visible: Side, infrared: Side, mser: MserParams | None, run: ProtocolRun) -> Results:
    return regdb_protocol(visible, infrared, mser, run.progress)


def _llcm(visible: Side, infrared: Side, mser: MserParams | None, run: ProtocolRun) -> Results:
    return llcm_protocol(visible, infrared, run.trials, mser, run.progress)


def _pair(visible: Side, infrared: Side, mser: MserParams | None, run: ProtocolRun) -> Results:
    return both_directions(visible, infrared, mser)


@dataclass(frozen=True)
class Protocol:
    """One test protocol."""

    name: str
    title: str
    mser: MserParams  # the re-ranking parameters its MSER figures use unless told otherwise
    run: Callable[[Side, Side, MserParams | None, ProtocolRun], Results]
    select_first: bool  # the first row's rank-1 selects the best epoch (SYSU-MM01); else the mean over the rows

    def selection_score(self, plain: Mapping[str, Mapping[str, Any]]) -> float:
        """The plain rank-1 that selects the best epoch."""
        if self.select_first:
            return float(next(iter(plain.values()))["r1"])
        return float(np.mean([r["r1"] for r in plain.values()]))


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("sysu", "SYSU-MM01", MSER_PRESETS["sysu"], _sysu, select_first=True),
    Protocol("regdb", "RegDB", MSER_PRESETS["regdb"], _regdb, select_first=False),
    Protocol("llcm", "LLCM", MSER_PRESETS["llcm"], _llcm, select_first=False),
    # any other dataset: both directions over the whole test set; RegDB's unmasked re-ranking suits any gallery
    Protocol("pair", "cross-modality pair", MSER_PRESETS["regdb"], _pair, select_first=False),
)}


def find_protocol(name: str) -> Protocol:
    """The registry row of `name`; ValueError listing the known protocols otherwise."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}: expected one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def run_protocol(name: str, visible: Side, infrared: Side, mser: MserParams | None = None,
                 run: ProtocolRun = ProtocolRun()) -> Results:
    """{setting or direction: metrics} of protocol `name`: plain ranking, or MSER re-ranked with `mser`."""
    return find_protocol(name).run(visible, infrared, mser, run)
