"""The embedded synthetic TC dataset: the default that runs anywhere.

Each class is an app with its own generative process; every flow is drawn by vectorized
numpy (one Python step per packet position, never per flow):

1. **Process choice.** A flow comes from its app's own process or, with a class-specific
   share, from one of a few shared *library* processes (ads, analytics, CDN, push...) that
   several apps embed. Library flows look alike whatever the app, which is what caps the
   achievable accuracy, as cross-app traffic does in MIRAGE-19.
2. **Handshake-like prefix.** TLS-like: ClientHello (up), certificate burst of MSS-sized
   packets plus a tail (down), key exchange (up), finished (down); sizes come from a small
   pool of server profiles, so some apps share servers; some flows resume a session
   (shorter prefix).
3. **Data phase.** A per-process Markov chain over request / bulk / tail / small-control
   states fixes sizes and directions; gaps depend on the direction change (server response
   ~ RTT, bursts ~ 10 us, client think time).
4. **TCP-like disturbances.** Retransmission copies after an RTO, capture loss, adjacent
   reordering and delayed-ACK gaps, each with a small per-packet probability.
5. **Raw form.** SYN / SYN-ACK / ACK, pure ACKs after downstream packets and FIN packets
   (zero payload) are woven in; for the MIRAGE-19 preset the raw series is truncated to its
   first 32 packets as MIRAGE-19 stores it, and the very curation kernel of the MIRAGE
   reader turns it into ``Flows``. Hence an export in the raw MIRAGE-19 layout
   (``export_mirage19``) reads back into exactly the same flows.

Lengths start at 11 payload packets; class sizes follow the real datasets' counts (max/min
about 7). Everything is a pure function of (preset, scale, seed).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jtcaug.data.flows import T_MAX_DEFAULT, DatasetError, Flows, flows_from_flat, pad_ragged
from jtcaug.data.mirage import EXTRACTED_DIR, drop_zero_payload

# Per-class flow counts of the curated real datasets. The MIRAGE-22 preset
# lowers its smallest class so that max/min is about 7 (real: 4.6).
MIRAGE19_COUNTS = {
    "de.motain.iliga": 7505, "com.waze": 7214, "com.duolingo": 4583, "it.subito": 4299,
    "com.contextlogic.wish": 3927, "com.accuweather.android": 3737,
    "com.joelapenna.foursquared": 3627, "com.spotify.music": 3300,
    "com.dropbox.android": 3189, "com.facebook.katana": 2878, "com.iconology.comics": 2812,
    "com.twitter.android": 2805, "com.google.android.youtube": 2728, "com.pinterest": 2450,
    "com.tripadvisor.tripadvisor": 2052, "com.facebook.orca": 1783, "com.viber.voip": 1618,
    "com.trello": 1478, "com.groupon": 1174, "air.com.hypah.io.slither": 1013,
}  # fmt: skip
MIRAGE22_COUNTS = {
    "com.cisco.webex.meetings": 4437, "com.skype.raider": 4117, "com.microsoft.teams": 3857,
    "us.zoom.videomeetings": 3587, "com.discord": 3387, "com.facebook.orca": 2623,
    "com.gotomeeting": 2557, "com.google.android.apps.meetings": 1238, "com.Slack": 634,
}  # fmt: skip

# Any class keeps at least this many flows at small scales, so a 70/15/15 stratified split
# still has members of every class in every part.
MIN_CLASS_FLOWS = 10
# Every curated flow has more than this many payload packets (the MIRAGE >10 rule).
MIN_PAYLOAD_PACKETS = 10
# MIRAGE-19 stores the first 32 packets of each biflow (zero-payload ones included).
MIRAGE19_RAW_WINDOW = 32
MIRAGE19_FILES = 1642
# Raw flows the curation drops, per kept flow, in the MIRAGE-19 export (~122k raw at scale 1).
SHORT_FLOWS_PER_KEPT = 0.55
BACKGROUND_FLOWS_PER_KEPT = 0.36
BACKGROUND_LABELS = (
    "com.google.android.gms", "android", "com.android.vending",
    "com.google.android.googlequicksearchbox",
)  # fmt: skip
DEVICES = ("Nexus7_02_00_00_00_00_01", "RedmiNote_02_00_00_00_00_02")

# Data-phase states: direction of each and the base transition matrix (rows sum to 1).
UP_REQ, DOWN_BULK, DOWN_TAIL, UP_SMALL, DOWN_SMALL, UP_BULK = range(6)
STATE_DIR = np.array([1, -1, -1, 1, -1, 1], np.int8)
BASE_TRANSITIONS = np.array(
    [
        [0.05, 0.45, 0.20, 0.05, 0.25, 0.00],
        [0.05, 0.60, 0.30, 0.05, 0.00, 0.00],
        [0.45, 0.10, 0.00, 0.25, 0.10, 0.10],
        [0.30, 0.20, 0.00, 0.10, 0.40, 0.00],
        [0.40, 0.10, 0.00, 0.30, 0.20, 0.00],
        [0.00, 0.00, 0.00, 0.10, 0.30, 0.60],
    ]
)
# How far a process's transition rows may stray from the base (Dirichlet concentration).
TRANSITION_CONCENTRATION = 6.0
# Per-packet disturbance probabilities in the data phase [chosen].
P_RETRANSMIT = 0.02
P_CAPTURE_LOSS = 0.015
P_REORDER = 0.02
P_DELAYED_ACK = 0.04
DELAYED_ACK_S = (0.04, 0.2)
# Extra payload positions drawn so that losses still leave enough packets.
_LOSS_MARGIN = 8
_MAX_REDRAWS = 30


@dataclass(frozen=True)
class Preset:
    """Shape of one synthetic dataset.

    Attributes:
      counts: ``(app, flows)`` at scale 1.
      complete_series: False: MIRAGE-19-like (raw series truncated to 32 packets, which caps
        ``n_packets``); True: MIRAGE-22-like (complete, long series; no raw export).
      library_share: range of the per-class share of flows drawn from library processes.
      n_libraries: number of shared library processes.
      length_median: range of the per-process median of payload packets beyond the 11th.
      length_sigma: log-normal spread of that length.
      n_server_profiles: pool of TLS-like handshake profiles the processes draw from.
    """

    name: str
    counts: tuple[tuple[str, int], ...]
    complete_series: bool
    library_share: tuple[float, float]
    n_libraries: int
    length_median: tuple[float, float]
    length_sigma: float
    n_server_profiles: int


PRESETS = {
    "synthetic-mirage19": Preset(
        name="synthetic-mirage19",
        counts=tuple(MIRAGE19_COUNTS.items()),
        complete_series=False,
        library_share=(0.15, 0.4),
        n_libraries=6,
        length_median=(3.0, 25.0),
        length_sigma=0.9,
        n_server_profiles=14,
    ),
    "synthetic-mirage22": Preset(
        name="synthetic-mirage22",
        counts=tuple(MIRAGE22_COUNTS.items()),
        complete_series=True,
        library_share=(0.02, 0.08),
        n_libraries=3,
        length_median=(1000.0, 8000.0),
        length_sigma=1.2,
        n_server_profiles=8,
    ),
}
ALIASES = {"synthetic": "synthetic-mirage19"}
_PRESET_IDS = {"synthetic-mirage19": 19, "synthetic-mirage22": 22}


def resolve_preset(name: str) -> Preset:
    key = ALIASES.get(name, name)
    if key not in PRESETS:
        raise DatasetError(
            f"unknown synthetic preset {name!r}; expected one of {sorted([*PRESETS, *ALIASES])}"
        )
    return PRESETS[key]


def preset_class_counts(preset: Preset, scale: float) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names (sorted, as the MIRAGE reader orders them) and flows per class."""
    if not (np.isfinite(scale) and scale > 0):
        raise DatasetError(f"scale must be a positive number, got {scale}")
    names = tuple(sorted(name for name, _ in preset.counts))
    base = dict(preset.counts)
    counts = np.array([max(MIN_CLASS_FLOWS, int(round(base[n] * scale))) for n in names], np.int64)
    return names, counts


# ---------------------------------------------------------------------------------------------
# Process parameters.


@dataclass(frozen=True)
class _Processes:
    """Parameters of K generative processes (apps first, then libraries); arrays lead with K."""

    mss: np.ndarray
    req_mu: np.ndarray
    req_sd: np.ndarray
    small_up: np.ndarray
    small_down: np.ndarray
    tail_lo: np.ndarray
    tail_hi: np.ndarray
    trans_cdf: np.ndarray  # (K, S, S)
    init_cdf: np.ndarray  # (K, S)
    rtt_median: np.ndarray
    burst_gap: np.ndarray
    think_gap: np.ndarray
    up_burst_gap: np.ndarray
    gap_sigma: np.ndarray
    ack_p: np.ndarray
    resume_p: np.ndarray
    profiles: np.ndarray  # (K, 2) server profile ids, first one primary
    length_median: np.ndarray
    # Server profiles (pool of H): ClientHello size, MSS-sized certificate packets, cert
    # tail, key exchange and finished sizes.
    hello: np.ndarray
    cert_packets: np.ndarray
    cert_tail: np.ndarray
    key_exchange: np.ndarray
    finished: np.ndarray


def _draw_processes(rng: np.random.Generator, n_proc: int, preset: Preset) -> _Processes:
    n_states = len(STATE_DIR)
    trans = np.stack(
        [
            rng.dirichlet(TRANSITION_CONCENTRATION * BASE_TRANSITIONS[s] + 0.05, size=n_proc)
            for s in range(n_states)
        ],
        axis=1,
    )
    init = rng.dirichlet(np.full(n_states, 0.7), size=n_proc)
    tail_lo = rng.integers(40, 900, n_proc)
    n_prof = preset.n_server_profiles
    lo, hi = preset.length_median
    return _Processes(
        mss=rng.choice(np.array([1448, 1460, 1400]), n_proc, p=[0.6, 0.3, 0.1]),
        req_mu=rng.uniform(80, 900, n_proc),
        req_sd=rng.uniform(5, 120, n_proc),
        small_up=rng.choice(np.array([31, 35, 38, 46, 51, 69, 85, 101]), n_proc),
        small_down=rng.choice(np.array([31, 35, 51, 74, 110, 181, 242]), n_proc),
        tail_lo=tail_lo,
        tail_hi=np.minimum(1448, tail_lo + rng.integers(50, 700, n_proc)),
        trans_cdf=np.cumsum(trans, axis=2),
        init_cdf=np.cumsum(init, axis=1),
        rtt_median=10.0 ** rng.uniform(-2.0, -0.7, n_proc),
        burst_gap=10.0 ** rng.uniform(-5.0, -3.5, n_proc),
        think_gap=10.0 ** rng.uniform(-3.0, 0.0, n_proc),
        up_burst_gap=10.0 ** rng.uniform(-4.0, -2.0, n_proc),
        gap_sigma=rng.uniform(0.4, 1.0, n_proc),
        ack_p=rng.uniform(0.1, 0.45, n_proc),
        resume_p=rng.uniform(0.0, 0.3, n_proc),
        profiles=rng.integers(0, n_prof, (n_proc, 2)),
        length_median=np.exp(rng.uniform(np.log(lo), np.log(hi), n_proc)),
        hello=rng.integers(180, 620, n_prof),
        cert_packets=rng.integers(1, 4, n_prof),
        cert_tail=rng.integers(80, 1400, n_prof),
        key_exchange=rng.choice(np.array([51, 93, 126, 158, 182]), n_prof),
        finished=rng.choice(np.array([51, 242, 258, 274]), n_prof),
    )


def _assign_processes(
    rng: np.random.Generator, labels: np.ndarray, n_classes: int, preset: Preset
) -> np.ndarray:
    """Process of each flow: its app's own (id = class) or a library (id >= n_classes)."""
    share = rng.uniform(*preset.library_share, n_classes)
    # Each app embeds a few libraries, with uneven weights.
    weights = rng.dirichlet(np.full(preset.n_libraries, 0.5), size=n_classes)
    from_library = rng.random(labels.size) < share[labels]
    cdf = np.cumsum(weights[labels], axis=1)
    lib = np.minimum((rng.random(labels.size)[:, None] > cdf).sum(1), preset.n_libraries - 1)
    return np.where(from_library, n_classes + lib, labels)


# ---------------------------------------------------------------------------------------------
# Payload-level series.


def _payload_series(
    rng: np.random.Generator, proc: _Processes, pid: np.ndarray, n_pos: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sizes, directions (+1/-1), gaps (s) of ``n_pos`` payload packets per flow; RTT per flow.

    Returns ``(N, n_pos)`` int64 sizes (>= 1), int8 directions, float64 gaps (first 0) and
    ``(N,)`` per-flow RTT.
    """
    n = pid.size
    n_gen = n_pos + _LOSS_MARGIN
    # Markov chain over data-phase states, one vectorized step per position.
    states = np.empty((n, n_gen), np.int64)
    cdf_init = proc.init_cdf[pid]
    states[:, 0] = np.minimum((rng.random(n)[:, None] > cdf_init).sum(1), len(STATE_DIR) - 1)
    for t in range(1, n_gen):
        cdf = proc.trans_cdf[pid, states[:, t - 1]]
        states[:, t] = np.minimum((rng.random(n)[:, None] > cdf).sum(1), len(STATE_DIR) - 1)
    dirs = STATE_DIR[states]
    sizes = np.zeros((n, n_gen), np.int64)
    rows = np.broadcast_to(pid[:, None], (n, n_gen))
    for state in range(len(STATE_DIR)):
        mask = states == state
        k = rows[mask]
        m = int(mask.sum())
        if state == UP_REQ:
            drawn = np.rint(rng.normal(proc.req_mu[k], proc.req_sd[k]))
        elif state in (DOWN_BULK, UP_BULK):
            drawn = proc.mss[k]
        elif state == DOWN_TAIL:
            drawn = rng.integers(proc.tail_lo[k], proc.tail_hi[k] + 1)
        else:
            typical = proc.small_up[k] if state == UP_SMALL else proc.small_down[k]
            jitter = np.where(rng.random(m) < 0.75, 0, rng.integers(-20, 60, m))
            drawn = typical + jitter
        sizes[mask] = np.clip(drawn, 1, 1460)

    # Handshake-like prefix, overwriting the first positions.
    profile = np.where(rng.random(n) < 0.75, proc.profiles[pid, 0], proc.profiles[pid, 1])
    resumed = rng.random(n) < proc.resume_p[pid]
    n_cert = np.where(resumed, 0, proc.cert_packets[profile])
    hs_len = n_cert + 4
    pos = np.arange(n_gen)[None, :]
    hello = proc.hello[profile] + rng.integers(0, 9, n) + np.where(resumed, 190, 0)
    tail = np.where(resumed, 130 + rng.integers(0, 40, n), proc.cert_tail[profile])
    tail = tail + rng.integers(-20, 21, n)
    mss = proc.mss[pid]
    hs_size = np.select(
        [pos == 0, pos <= n_cert[:, None], pos == n_cert[:, None] + 1, pos == n_cert[:, None] + 2],
        [hello[:, None], mss[:, None], tail[:, None], proc.key_exchange[profile][:, None]],
        proc.finished[profile][:, None],
    )
    hs_dir = np.where((pos == 0) | (pos == n_cert[:, None] + 2), 1, -1).astype(np.int8)
    in_hs = pos < hs_len[:, None]
    sizes = np.where(in_hs, np.clip(hs_size, 1, 1460), sizes)
    dirs = np.where(in_hs, hs_dir, dirs)

    # Gaps by direction change; handshake gaps follow TLS timing.
    rtt = proc.rtt_median[pid] * np.exp(0.35 * rng.normal(size=n))
    prev_dir = np.concatenate([np.ones((n, 1), np.int8), dirs[:, :-1]], axis=1)
    median = np.select(
        [(prev_dir == 1) & (dirs == -1), (prev_dir == -1) & (dirs == -1), prev_dir == -1],
        [rtt[:, None], proc.burst_gap[pid][:, None], proc.think_gap[pid][:, None]],
        proc.up_burst_gap[pid][:, None],
    )
    gaps = median * np.exp(proc.gap_sigma[pid][:, None] * rng.normal(size=(n, n_gen)))
    # Server replies take one RTT, with a little per-exchange jitter.
    rtt_jittered = rtt[:, None] * np.exp(0.1 * rng.normal(size=(n, n_gen)))
    hs_gap = np.select(
        [pos == 1, pos <= n_cert[:, None] + 1, pos == n_cert[:, None] + 2],
        [
            rtt_jittered,
            2e-5 * np.exp(rng.normal(size=(n, n_gen))),
            2e-3 * np.exp(0.5 * rng.normal(size=(n, n_gen))),
        ],
        rtt_jittered,
    )
    gaps = np.where(in_hs, hs_gap, gaps)
    delayed = (rng.random((n, n_gen)) < P_DELAYED_ACK) & ~in_hs
    gaps = gaps + np.where(delayed, rng.choice(np.array(DELAYED_ACK_S), (n, n_gen)), 0.0)

    # Adjacent reordering: swap t and t + 1 (never two overlapping swaps), gaps stay put.
    swap = (rng.random((n, n_gen)) < P_REORDER) & ~in_hs
    swap[:, -1] = False
    swap[:, 1:] &= ~swap[:, :-1]
    perm = np.broadcast_to(np.arange(n_gen), (n, n_gen)).copy()
    r, c = np.nonzero(swap)
    perm[r, c], perm[r, c + 1] = c + 1, c
    sizes = np.take_along_axis(sizes, perm, axis=1)
    dirs = np.take_along_axis(dirs, perm, axis=1)

    # Retransmission copies (emitted twice, the copy after an RTO) and capture loss.
    u = rng.random((n, n_gen))
    emit = np.where(u < P_RETRANSMIT, 2, np.where(u < P_RETRANSMIT + P_CAPTURE_LOSS, 0, 1))
    emit = np.where(in_hs, 1, emit)
    src = np.repeat(np.arange(n * n_gen), emit.ravel())
    is_copy = np.zeros(src.size, bool)
    is_copy[1:] = src[1:] == src[:-1]
    counts = emit.sum(1)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rto = np.maximum(0.2, 2.0 * rtt) * np.exp(0.3 * rng.normal(size=n))
    flat_gaps = np.where(is_copy, np.repeat(rto, counts), gaps.ravel()[src])
    sizes = pad_ragged(sizes.ravel()[src], offsets, n_pos, np.int64)
    dirs = pad_ragged(dirs.ravel()[src], offsets, n_pos, np.int8)
    gaps = pad_ragged(flat_gaps, offsets, n_pos, np.float64)
    gaps[:, 0] = 0.0
    # Rare flows that lost more packets than the margin: repeat their last packet pattern.
    short = np.minimum(counts, n_pos) < n_pos
    if short.any():
        fill = np.arange(n_pos)[None, :] >= np.minimum(counts, n_pos)[:, None]
        fill &= short[:, None]
        sizes = np.where(fill, proc.mss[pid][:, None], sizes)
        dirs = np.where(fill, np.int8(-1), dirs)
        gaps = np.where(fill, proc.burst_gap[pid][:, None], gaps)
    return sizes, dirs, gaps, rtt


def _lengths(rng: np.random.Generator, proc: _Processes, pid: np.ndarray, sigma: float):
    """Payload packets per flow: more than ``MIN_PAYLOAD_PACKETS``, log-normal beyond."""
    extra = proc.length_median[pid] * np.exp(sigma * rng.normal(size=pid.size))
    return MIN_PAYLOAD_PACKETS + 1 + np.floor(extra).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Raw (MIRAGE-19) form: zero-payload packets woven in, first 32 raw packets kept.


@dataclass
class _RawFlows:
    """Raw packet series as MIRAGE-19 stores them, ``(N, W)`` with ``raw_len`` valid."""

    payload: np.ndarray
    dir01: np.ndarray
    iat: np.ndarray
    raw_len: np.ndarray
    total_packets: np.ndarray  # BF_num_packets (beyond the stored window)


def _weave_raw(
    rng: np.random.Generator,
    proc: _Processes,
    pid: np.ndarray,
    n_pay: np.ndarray,
    window: int,
) -> _RawFlows:
    """Raw series of ``n_pay`` payload packets (may be 0) with TCP control packets added."""
    n = pid.size
    n_pos = window
    sizes, dirs, gaps, rtt = _payload_series(rng, proc, pid, n_pos)
    n_valid = np.minimum(n_pay, n_pos)
    pos = np.arange(n_pos)[None, :]
    valid = pos < n_valid[:, None]
    ack = valid & (dirs == -1) & (rng.random((n, n_pos)) < proc.ack_p[pid][:, None])
    ack_frac = rng.uniform(0.05, 0.95, (n, n_pos))
    next_gap = np.concatenate([gaps[:, 1:], np.zeros((n, 1))], axis=1)
    last = pos == (n_valid - 1)[:, None]
    ack_iat = np.where(last, 0.04 * np.exp(0.5 * rng.normal(size=(n, n_pos))), ack_frac * next_gap)
    prev_ack_iat = np.concatenate([np.zeros((n, 1)), np.where(ack, ack_iat, 0.0)[:, :-1]], axis=1)
    hello_iat = 1e-3 * np.exp(rng.normal(size=n))
    pay_iat = np.where(pos == 0, hello_iat[:, None], gaps - prev_ack_iat)
    pay_iat = np.maximum(pay_iat, 0.0)

    prefix = 3  # SYN, SYN-ACK, ACK
    acks_before = np.cumsum(ack, axis=1) - ack
    pay_pos = prefix + pos + acks_before
    ended = n_pay <= n_pos
    n_acks = ack.sum(1)
    end_pos = prefix + n_valid + n_acks  # FIN position when the flow ends in the window
    total_generated = end_pos + np.where(ended, 2, 0)

    width = window + 1  # one scratch column collects everything past the window
    payload = np.zeros((n, width), np.int64)
    dir01 = np.zeros((n, width), np.int8)
    iat = np.zeros((n, width), np.float64)
    rows = np.broadcast_to(np.arange(n)[:, None], (n, n_pos))

    def put(where, mask, p, d, t):
        cols = np.minimum(where, window)[mask]
        payload[rows[mask], cols] = p[mask] if np.ndim(p) else p
        dir01[rows[mask], cols] = d[mask] if np.ndim(d) else d
        iat[rows[mask], cols] = t[mask]

    syn_iats = np.stack([np.zeros(n), rtt, 3e-4 * np.exp(0.5 * rng.normal(size=n))], axis=1)
    payload[:, :prefix] = 0
    dir01[:, :prefix] = np.array([0, 1, 0], np.int8)
    iat[:, :prefix] = syn_iats
    put(pay_pos, valid, sizes, ((1 - dirs) // 2).astype(np.int8), pay_iat)
    put(pay_pos + 1, ack, 0, 0, ack_iat)
    fin = np.stack([np.minimum(end_pos, window), np.minimum(end_pos + 1, window)], axis=1)
    fin_rows = np.flatnonzero(ended)
    fin_iat = np.stack([0.5 * np.exp(rng.normal(size=n)), rtt], axis=1)
    for j, d in enumerate((0, 1)):
        payload[fin_rows, fin[fin_rows, j]] = 0
        dir01[fin_rows, fin[fin_rows, j]] = d
        iat[fin_rows, fin[fin_rows, j]] = fin_iat[fin_rows, j]
    raw_len = np.minimum(total_generated, window)
    beyond = np.rint((n_pay - n_valid) * (1 + proc.ack_p[pid] / 2)).astype(np.int64)
    total = total_generated + beyond + np.where(ended, 0, 2)
    keep_cols = np.arange(window)[None, :] < raw_len[:, None]
    return _RawFlows(
        payload=np.where(keep_cols, payload[:, :window], 0),
        dir01=np.where(keep_cols, dir01[:, :window], 0).astype(np.int8),
        iat=np.where(keep_cols, iat[:, :window], 0.0),
        raw_len=raw_len,
        total_packets=total,
    )


def _curate_raw(raw: _RawFlows, t_max: int):
    """The MIRAGE curation kernel on raw series: flat kept packets and their offsets."""
    mask = np.arange(raw.payload.shape[1])[None, :] < raw.raw_len[:, None]
    offsets = np.concatenate([[0], np.cumsum(raw.raw_len)]).astype(np.int64)
    return drop_zero_payload(raw.payload[mask], raw.dir01[mask], raw.iat[mask], offsets)


# ---------------------------------------------------------------------------------------------
# The dataset.


@dataclass
class _Generated:
    """Generator output; the raw form and the file layout exist for the MIRAGE-19 preset."""

    flows: Flows
    raw: _RawFlows | None
    file_of: np.ndarray | None  # export file of each flow (in the canonical order)
    layout: _Layout | None


@dataclass(frozen=True)
class _Layout:
    """Capture files of a MIRAGE-19 export: app, device and timestamp of each."""

    app: np.ndarray  # class id
    device: np.ndarray
    stamp: np.ndarray

    def file_name(self, i: int, class_names: tuple[str, ...]) -> tuple[str, str]:
        app = class_names[int(self.app[i])]
        name = f"{int(self.stamp[i])}_{app}_MIRAGE-2019_traffic_dataset_labeled_biflows.json"
        return DEVICES[int(self.device[i])], name


def _rngs(preset: Preset, seed: int) -> dict[str, np.random.Generator]:
    """Independent streams per purpose, so the class parameters do not depend on scale."""
    root = np.random.SeedSequence([int(seed), _PRESET_IDS[preset.name]])
    purposes = ("processes", "flows", "layout", "dropped")
    return {
        p: np.random.default_rng(s)
        for p, s in zip(purposes, root.spawn(len(purposes)), strict=True)
    }


def _layout(
    rng: np.random.Generator, counts: np.ndarray, scale: float
) -> tuple[_Layout, np.ndarray]:
    """Files per class (about 1,642 at scale 1) and the file of each flow (class order)."""
    n_classes = counts.size
    n_files = max(n_classes, int(round(MIRAGE19_FILES * scale)))
    share = counts / counts.sum() * (n_files - n_classes)
    per_class = 1 + np.floor(share).astype(np.int64)
    remainder = n_files - per_class.sum()
    per_class[np.argsort(-(share - np.floor(share)), kind="stable")[:remainder]] += 1
    app = np.repeat(np.arange(n_classes), per_class)
    stamps = 1_538_000_000 + rng.choice(3_000_000, size=app.size, replace=False)
    layout = _Layout(app=app, device=rng.integers(0, len(DEVICES), app.size), stamp=stamps)
    first = np.concatenate([[0], np.cumsum(per_class)[:-1]])
    labels = np.repeat(np.arange(n_classes), counts)
    file_of = first[labels] + (rng.random(labels.size) * per_class[labels]).astype(np.int64)
    return layout, file_of


def _generate(preset: Preset, scale: float, seed: int, t_max: int) -> _Generated:
    if t_max < 20:
        raise DatasetError(f"t_max must be >= 20, got {t_max}")
    if seed < 0:
        raise DatasetError(f"seed must be >= 0, got {seed}")
    class_names, counts = preset_class_counts(preset, scale)
    rngs = _rngs(preset, seed)
    n_classes = len(class_names)
    proc = _draw_processes(rngs["processes"], n_classes + preset.n_libraries, preset)
    labels = np.repeat(np.arange(n_classes), counts)
    rng = rngs["flows"]
    pid = _assign_processes(rng, labels, n_classes, preset)
    n_pay = _lengths(rng, proc, pid, preset.length_sigma)
    provenance = {
        "reader": "synthetic",
        "preset": preset.name,
        "scale": scale,
        "seed": int(seed),
        "t_max": t_max,
        "library_flows": int((pid >= n_classes).sum()),
    }
    name = preset.name if scale == 1.0 else f"{preset.name}@{scale:g}"
    if preset.complete_series:
        sizes, dirs, gaps, _ = _payload_series(rng, proc, pid, t_max)
        valid = np.arange(t_max)[None, :] < np.minimum(n_pay, t_max)[:, None]
        order = rngs["layout"].permutation(labels.size)
        flows = Flows(
            sizes=np.where(valid, sizes, 0)[order],
            directions=np.where(valid, dirs, 0)[order],
            iats=np.where(valid, gaps, 0.0)[order],
            n_packets=n_pay[order],
            labels=labels[order],
            class_names=class_names,
            name=name,
            provenance=provenance,
        )
        return _Generated(flows=flows, raw=None, file_of=None, layout=None)

    raw = _weave_raw(rng, proc, pid, n_pay, MIRAGE19_RAW_WINDOW)
    # Redraw the few flows whose stored window holds too few payload packets.
    for _ in range(_MAX_REDRAWS):
        n_kept = np.diff(_curate_raw(raw, t_max)[3])
        bad = np.flatnonzero(n_kept <= MIN_PAYLOAD_PACKETS)
        if bad.size == 0:
            break
        redo = _weave_raw(rng, proc, pid[bad], n_pay[bad], MIRAGE19_RAW_WINDOW)
        for attr in ("payload", "dir01", "iat", "raw_len", "total_packets"):
            getattr(raw, attr)[bad] = getattr(redo, attr)
    else:
        raise DatasetError("synthetic generator: could not draw long-enough flows")

    layout, file_of = _layout(rngs["layout"], counts, scale)
    rank = rngs["layout"].random(labels.size)
    order = np.lexsort((rank, layout.stamp[file_of], layout.device[file_of]))
    raw = _RawFlows(*(getattr(raw, a)[order] for a in _RawFlows.__dataclass_fields__))
    sizes, directions, iats, k_offsets = _curate_raw(raw, t_max)
    flows = flows_from_flat(
        sizes=sizes,
        directions=directions,
        iats=iats,
        offsets=k_offsets,
        n_packets=None,
        labels=labels[order],
        class_names=class_names,
        name=name,
        provenance=provenance,
        t_max=t_max,
    )
    return _Generated(flows=flows, raw=raw, file_of=file_of[order], layout=layout)


def generate(
    preset: str = "synthetic-mirage19",
    *,
    scale: float = 1.0,
    seed: int = 0,
    t_max: int = T_MAX_DEFAULT,
) -> Flows:
    """Generates a synthetic dataset.

    Args:
      preset: ``synthetic-mirage19`` (alias ``synthetic``; 20 classes, 64,172 flows at
        scale 1) or ``synthetic-mirage22`` (9 classes, ~26.4k flows).
      scale: multiplies every class's flow count (each class keeps >= 10 flows).
      seed: the whole dataset is a pure function of (preset, scale, seed).
      t_max: packets stored per flow.

    Returns:
      ``Flows`` named after the preset (``@scale`` appended when scale != 1).
    """
    return _generate(resolve_preset(preset), float(scale), int(seed), int(t_max)).flows


# ---------------------------------------------------------------------------------------------
# Export in the raw MIRAGE-19 layout.


def export_mirage19(
    out_dir: Path, *, scale: float = 1.0, seed: int = 0, progress: bool = False
) -> dict:
    """Writes ``synthetic-mirage19`` as a raw MIRAGE-2019 tree under ``out_dir``.

    The tree is ``<out_dir>/MIRAGE-2019_traffic_dataset_downloadable/<device>/<ts>_<app>_
    MIRAGE-2019_traffic_dataset_labeled_biflows.json`` with the public release's keys and
    fields, background flows (``BF_label`` of a system package) and short flows that the
    curation drops, zero-payload packets, and series truncated to 32 packets.
    ``L4_raw_payload`` holds empty byte lists. Reading the tree with the MIRAGE reader and
    default curation gives ``generate("synthetic-mirage19", scale=scale, seed=seed)``
    exactly (for scale < 1, pass ``min_class_flows=0``: small classes fall under 100).

    The tree is built in a temp folder beside the target and renamed into place, so an
    interrupted export leaves nothing half-written; an existing target is an error.

    Returns:
      A summary: path, files, flows written, kept/short/background counts.
    """
    preset = PRESETS["synthetic-mirage19"]
    out_dir = Path(out_dir)
    target = out_dir / EXTRACTED_DIR["mirage19"]
    if out_dir.exists() and not out_dir.is_dir():
        raise DatasetError(f"--out {out_dir}: exists and is not a directory")
    if target.exists():
        raise DatasetError(f"{target} already exists; remove it or choose another --out")
    gen = _generate(preset, float(scale), int(seed), T_MAX_DEFAULT)
    flows, layout = gen.flows, gen.layout
    n_classes = flows.n_classes
    rngs = _rngs(preset, seed)
    rng = rngs["dropped"]
    proc = _draw_processes(rngs["processes"], n_classes + preset.n_libraries, preset)

    # Flows the curation must drop: short app flows and background flows.
    counts = flows.class_counts()
    n_short = np.rint(counts * SHORT_FLOWS_PER_KEPT).astype(np.int64)
    short_labels = np.repeat(np.arange(n_classes), n_short)
    short_pid = _assign_processes(rng, short_labels, n_classes, preset)
    short_pay = rng.integers(0, MIN_PAYLOAD_PACKETS + 1, short_labels.size)
    n_bg = int(round(flows.n_flows * BACKGROUND_FLOWS_PER_KEPT))
    bg_pid = n_classes + rng.integers(0, preset.n_libraries, n_bg)
    bg_pay = _lengths(rng, proc, bg_pid, preset.length_sigma) - rng.integers(0, 8, n_bg)
    drop_pid = np.concatenate([short_pid, bg_pid])
    drop_raw = _weave_raw(
        rng, proc, drop_pid, np.concatenate([short_pay, bg_pay]), MIRAGE19_RAW_WINDOW
    )
    # A class's files are one contiguous block of the layout.
    files_per_class = np.bincount(layout.app, minlength=n_classes)
    first_file = np.cumsum(files_per_class) - files_per_class
    short_file = first_file[short_labels] + (
        rng.random(short_labels.size) * files_per_class[short_labels]
    ).astype(np.int64)
    drop_file = np.concatenate([short_file, rng.integers(0, layout.app.size, n_bg)])
    drop_label = np.concatenate(
        [
            np.array(flows.class_names, object)[short_labels],
            np.array(BACKGROUND_LABELS, object)[rng.integers(0, len(BACKGROUND_LABELS), n_bg)],
        ]
    )

    # Interleave dropped flows among the kept ones of each file, kept order preserved.
    kept_rank = np.arange(flows.n_flows, dtype=np.float64)
    drop_rank = rng.uniform(-0.5, flows.n_flows, drop_file.size)
    all_file = np.concatenate([gen.file_of, drop_file])
    all_rank = np.concatenate([kept_rank, drop_rank])
    order = np.lexsort((all_rank, all_file))
    kept_labels = np.array(flows.class_names, object)[flows.labels]
    all_label = np.concatenate([kept_labels, drop_label])
    raw = {
        a: np.concatenate([getattr(gen.raw, a), getattr(drop_raw, a)])
        for a in ("payload", "dir01", "iat", "raw_len", "total_packets")
    }
    file_bounds = np.searchsorted(all_file[order], np.arange(layout.app.size + 1))

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp_root = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    except OSError as err:
        raise DatasetError(
            f"--out {out_dir}: cannot create the output directory: {err.strerror}"
        ) from err
    try:
        tree = tmp_root / EXTRACTED_DIR["mirage19"]
        for device in DEVICES:
            (tree / device).mkdir(parents=True)
        files = range(layout.app.size)
        if progress:
            from tqdm import tqdm

            files = tqdm(files, desc="writing capture files", unit=" files")
        file_rng = np.random.default_rng(rng.integers(2**32))
        for i in files:
            idx = order[file_bounds[i] : file_bounds[i + 1]]
            device, name = layout.file_name(i, flows.class_names)
            doc = _capture_document(file_rng, raw, all_label, idx)
            (tree / device / name).write_text(json.dumps(doc))
        os.replace(tree, target)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return {
        "path": str(target),
        "files": int(layout.app.size),
        "flows": int(all_file.size),
        "kept_flows": flows.n_flows,
        "short_flows": int(short_labels.size),
        "background_flows": n_bg,
    }


def _capture_document(
    rng: np.random.Generator, raw: dict, labels: np.ndarray, idx: np.ndarray
) -> dict:
    """One capture file: flow key -> {packet_data, flow_features, flow_metadata}."""
    doc = {}
    n = idx.size
    ports = 32768 + rng.choice(28000, size=n, replace=False)
    servers = rng.integers(1, 255, (n, 4))
    server_ports = rng.choice(np.array([443, 443, 443, 80, 5228]), n)
    win = rng.integers(100, 2000, n)
    raw_len = raw["raw_len"][idx]
    payloads = raw["payload"][idx].tolist()
    dirs = raw["dir01"][idx].tolist()
    iats = raw["iat"][idx].tolist()
    for j in range(n):
        length = int(raw_len[j])
        p, d, t = payloads[j][:length], dirs[j][:length], iats[j][:length]
        sport, dport = int(ports[j]), int(server_ports[j])
        key = f"192.168.20.105,{sport},{'.'.join(map(str, servers[j]))},{dport},6"
        up = [x for x, dd in zip(p, d, strict=True) if dd == 0]
        down = [x for x, dd in zip(p, d, strict=True) if dd == 1]
        ip_len = [x + 52 for x in p]
        duration = float(sum(t))
        doc[key] = {
            "packet_data": {
                "src_port": [sport if dd == 0 else dport for dd in d],
                "dst_port": [dport if dd == 0 else sport for dd in d],
                "packet_dir": d,
                "L4_payload_bytes": p,
                "iat": t,
                "TCP_win_size": [65535] + [int(win[j])] * (length - 1),
                "L4_raw_payload": [[] for _ in range(length)],
            },
            "flow_features": {
                "packet_length": {"biflow": _describe(ip_len)},
                "iat": {"biflow": _describe(t)},
            },
            "flow_metadata": {
                "BF_label": str(labels[idx[j]]),
                "BF_labeling_type": "exact",
                "BF_num_packets": int(raw["total_packets"][idx[j]]),
                "BF_IP_packet_bytes": int(sum(ip_len)),
                "BF_L4_payload_bytes": int(sum(p)),
                "BF_duration": duration,
                "UF_num_packets": len(up),
                "UF_L4_payload_bytes": int(sum(up)),
                "DF_num_packets": len(down),
                "DF_L4_payload_bytes": int(sum(down)),
            },
        }
    return doc


def _describe(values: list) -> dict:
    arr = np.asarray(values, np.float64)
    return {
        "min": float(arr.min()),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
        "std": float(arr.std()),
    }
