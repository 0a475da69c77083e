#!/usr/bin/env python3
"""Draws docs/throughput.svg and docs/sieve.svg from criterion's results in target/criterion.

Usage: scripts/bench.sh quick && python3 scripts/plot.py
Plain SVG written by hand: no plotting library needed.
"""
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CRIT = os.path.join(ROOT, "target", "criterion")


def median_ns(*parts):
    path = os.path.join(CRIT, *parts, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def bar_chart(title, unit, groups, path, log=False):
    """groups: [(group label, [(bar label, value or None)])]."""
    import math

    bars = [(g, b, v) for g, items in groups for b, v in items if v]
    if not bars:
        print(f"no data for {path}", file=sys.stderr)
        return
    width, row, left = 900, 22, 330
    height = 70 + row * (len(bars) + len(groups))
    vmax = max(v for _, _, v in bars)
    scale = (lambda v: math.log10(max(v, 1e-9)) / math.log10(vmax) if vmax > 1 else 0) if log else (lambda v: v / vmax)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="24" font-size="16" font-weight="bold">{esc(title)}</text>',
        f'<text x="10" y="44" fill="#555">{esc(unit)}</text>',
    ]
    y = 60
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    for gi, (group, items) in enumerate(groups):
        out.append(f'<text x="10" y="{y + 14}" font-weight="bold">{esc(group)}</text>')
        y += row
        for bi, (label, v) in enumerate(items):
            if not v:
                continue
            w = max(1.0, scale(v) * (width - left - 120))
            color = palette[bi % len(palette)]
            out.append(f'<text x="30" y="{y + 14}">{esc(label)}</text>')
            out.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{color}"/>')
            out.append(f'<text x="{left + w + 6:.1f}" y="{y + 14}">{v:,.1f}</text>')
            y += row
    out.append("</svg>")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {os.path.relpath(path, ROOT)}")


def mitems(ns):
    return 1e3 / ns if ns else None


def main():
    tp = []
    for group, caps in [("spsc_u64", [16, 1024, 65536]), ("spsc_pod64", [16, 1024, 65536]),
                        ("mpsc_u64", [1024]), ("spmc_u64", [1024]), ("mpmc_u64", [1024])]:
        items = []
        for cap in caps:
            items.append((f"shm chunked, capacity {cap}", mitems(median_ns(f"throughput_{group}", "shm_chunk", str(cap)))))
            items.append((f"shm push/pop, capacity {cap}", mitems(median_ns(f"throughput_{group}", "shm_push_pop", str(cap)))))
        for peer in ["crossbeam_bounded/1024", "std_sync_channel/1024", "pipe_32KiB", "pipe_4KiB", "socket_32KiB", "pipe_item"]:
            items.append((peer.replace("_", " "), mitems(median_ns(f"throughput_{group}", *peer.split("/")))))
        tp.append((group.replace("_", " "), items))
    bar_chart("Throughput between two processes (peers: threads for channels)", "million items per second (log scale)",
              tp, os.path.join(ROOT, "docs", "throughput.svg"), log=True)

    sv = []
    for n in ["1e4", "1e5", "1e6"]:
        group = f"sieve_N={n}_S=100"
        items = []
        for bench in ["pipeline/1024", "pipeline/10", "threads_chunk/1024", "threads_item/1024", "threads_chunk/10",
                      "threads_item/10", "sequential", "reference"]:
            ns = median_ns(group, *bench.split("/"))
            items.append((bench.replace("/", ", depth "), ns / 1e6 if ns else None))
        sv.append((f"N = {n}, S = 100", items))
    bar_chart("Sieve wall time per mode", "milliseconds (log scale), lower is better", sv,
              os.path.join(ROOT, "docs", "sieve.svg"), log=True)


if __name__ == "__main__":
    main()
