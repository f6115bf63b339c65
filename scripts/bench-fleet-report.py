#!/usr/bin/env python3
"""Figures of scripts/bench-fleet.sh (standard library only).

  bench-fleet-report.py plan --load F --capacity N --tokens-per-sec T --ttft-ms M
                        --lengths SPEC --slowdowns "1 2 1 1" --externals "0 0 12 0" [--rate R]
                                       the arrival rate for the busy fraction F, as JSON
  bench-fleet-report.py sample SECS OUT NAME=URL...
                                       scrapes each mock's /metrics every SECS into OUT
                                       (JSON lines) until SIGTERM
  bench-fleet-report.py run DIR        one run's files -> its summary as JSON on stdout
  bench-fleet-report.py report RAW SVG the summaries in RAW (TARGET-ROUND.json) -> markdown
                                       report on stdout, chart to SVG
  bench-fleet-report.py selftest       the parsers' own tests

A run's DIR holds meta.tsv, load.json (ringlb-load --json), requests.jsonl (--request-log),
samples.jsonl (this script's sampler) and GPU.metrics (each mock's /metrics after the load).
A run whose files are missing or disagree is an error, never a figure.
"""

import json
import math
import re
import signal
import statistics
import sys
import threading
import time
import unittest
import urllib.request
from pathlib import Path

GPUS = ["gpu0", "gpu1", "gpu2", "gpu3"]
LABELS = {
    "least_load": "ringlb least_load",
    "least_connections": "ringlb least_connections",
    "haproxy": "HAProxy leastconn",
    "nginx": "NGINX least_conn",
    "round_robin": "ringlb round_robin",
}


def die(msg):
    print(f"bench-fleet-report: {msg}", file=sys.stderr)
    sys.exit(1)


# ---- inputs ----------------------------------------------------------------------------


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels)): value}; comments and junk skipped."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$", line.strip())
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = value
    return out


def metric(parsed, name, default=None):
    """The value of the one series called `name` (whatever its labels), or the sum of several."""
    values = [v for (n, _), v in parsed.items() if n == name]
    if not values:
        return default
    return sum(values)


def parse_lengths(spec):
    """A --max-tokens-dist spec -> (kind, params)."""
    kind, _, params = spec.partition(":")
    if kind == "fixed":
        return "fixed", {"n": int(params)}
    if kind == "lognormal":
        p = dict(kv.split("=", 1) for kv in params.split(",") if kv)
        return "lognormal", {
            "median": float(p["median"]),
            "sigma": float(p["sigma"]),
            "max": int(p.get("max", 100000)),
        }
    raise ValueError(f"unknown distribution {spec!r}")


def mean_tokens(spec):
    """Mean of the distribution as the sampler draws it: rounded, clamped to 1..max."""
    kind, p = parse_lengths(spec)
    if kind == "fixed":
        return float(p["n"])
    mu, s, top = math.log(p["median"]), p["sigma"], p["max"]
    if s == 0:
        return float(min(max(round(p["median"]), 1), top))

    def cdf(x):
        return 0.5 * (1 + math.erf((math.log(x) - mu) / (s * math.sqrt(2))))

    # E[min(X, top)] for the log-normal X, in closed form (the rounding and the floor of 1
    # move it by well under a token).
    a = (math.log(top) - mu) / s
    below = math.exp(mu + s * s / 2) * 0.5 * (1 + math.erf((a - s) / math.sqrt(2)))
    return below + top * (1 - cdf(top))


def read_meta(path):
    meta = {}
    for line in path.read_text().splitlines():
        key, _, val = line.partition("\t")
        meta[key] = val
    return meta


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]


# ---- plan ------------------------------------------------------------------------------


def plan(args):
    opts = dict(zip(args[0::2], args[1::2]))
    load = float(opts["--load"])
    cap = int(opts["--capacity"])
    tps = float(opts["--tokens-per-sec"])
    ttft = float(opts["--ttft-ms"]) / 1000
    lengths = opts["--lengths"]
    slow = [float(x) for x in opts["--slowdowns"].split()]
    ext = [int(x) for x in opts["--externals"].split()]
    mean = mean_tokens(lengths)
    explain = [
        f"plan: max_tokens {lengths}: mean {mean:.1f} tokens per stream",
    ]
    service = 0.0
    for i, (f, e) in enumerate(zip(slow, ext)):
        secs = f * (ttft + mean / tps)
        free = cap - e
        rate = free / secs
        service += rate
        explain.append(
            f"plan: gpu{i}: {free} free slots ({cap} - {e} external) / "
            f"({f:g} x ({ttft * 1000:g} ms + {mean:.1f} / {tps:g} tok/s) = {secs:.3f} s a stream)"
            f" = {rate:.2f} streams/s"
        )
    rate = load * service
    explain.append(
        f"plan: fleet serves {service:.2f} streams/s; x {load:g} busy = {rate:.2f} streams/s"
    )
    if "--rate" in opts:
        rate = float(opts["--rate"])
        explain.append(f"plan: RATE given: {rate:g} streams/s ({rate / service:.0%} busy)")
    rate = round(rate, 2)
    print(json.dumps({"rate": rate, "service_rate": service, "mean_tokens": mean,
                      "load": rate / service, "explain": explain}))


# ---- sampler ---------------------------------------------------------------------------


def sample(args):
    interval, out, targets = float(args[0]), Path(args[1]), args[2:]
    urls = dict(t.split("=", 1) for t in targets)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def one(url, into, name):
        try:
            with urllib.request.urlopen(url, timeout=interval * 4) as r:
                p = parse_metrics(r.read().decode("utf-8", "replace"))
            into[name] = {
                "running": metric(p, "vllm:num_requests_running"),
                "waiting": metric(p, "vllm:num_requests_waiting"),
            }
        except OSError as e:
            into[name] = {"error": str(e)}

    with out.open("w") as f:
        next_at = time.monotonic()
        while not stop.is_set():
            row, threads = {}, []
            for name, url in urls.items():
                t = threading.Thread(target=one, args=(url, row, name))
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
            f.write(json.dumps({"t": time.time(), "gpus": row}) + "\n")
            f.flush()
            next_at += interval
            stop.wait(max(0.0, next_at - time.monotonic()))


# ---- one run ---------------------------------------------------------------------------


def gpu_load(samples_path, capacity):
    """Mean (running + waiting) / capacity per GPU over the samples taken while streams ran."""
    rows = [json.loads(line) for line in samples_path.read_text().splitlines() if line.strip()]
    per = {g: [] for g in GPUS}
    for row in rows:
        for g, v in row["gpus"].items():
            if g in per and v.get("running") is not None and v.get("waiting") is not None:
                per[g].append((v["running"] + v["waiting"]) / capacity)
    if not any(per.values()):
        raise ValueError(f"{samples_path}: no sample has a reading")
    return {g: (statistics.fmean(v) if v else None) for g, v in per.items()}, len(rows)


def summarize(d):
    meta = read_meta(d / "meta.tsv")
    load = json.loads((d / "load.json").read_text())
    capacity = int(meta["capacity"])
    reqs = [json.loads(line) for line in (d / "requests.jsonl").read_text().splitlines() if line]
    if len(reqs) != load["requests"]:
        raise ValueError(f"{d}: {len(reqs)} request log lines, the report counts {load['requests']}")
    ttft_by_gpu = {g: [] for g in GPUS}
    for r in reqs:
        if r["ok"] and r.get("first_token") and r.get("backend") in ttft_by_gpu:
            ttft_by_gpu[r["backend"]].append(r["first_token"] - r["start"])
    gpus = {}
    loads, n_samples = gpu_load(d / "samples.jsonl", capacity)
    for g in GPUS:
        p = parse_metrics((d / f"{g}.metrics").read_text())
        queued = metric(p, "ringlb_mock_client_requests_queued_total")
        if queued is None:
            raise ValueError(f"{d}/{g}.metrics has no ringlb_mock_client_requests_queued_total")
        t = ttft_by_gpu[g]
        gpus[g] = {
            "streams": load["backends"].get(g, 0),
            "queued": int(queued),
            "queue_s": metric(p, "ringlb_mock_client_queue_seconds_total", 0.0),
            "load": loads[g],
            "ttft_p50_ms": round(percentile(t, 0.5) * 1000, 1) if t else None,
            "ttft_p99_ms": round(percentile(t, 0.99) * 1000, 1) if t else None,
        }
    ms = lambda us: round(us / 1000, 1)
    tpot = load["tpot"]["p50"]
    return {
        "target": meta["target"],
        "round": int(meta["round"]),
        "loadavg": meta.get("loadavg"),
        "engine_metrics": meta.get("engine_metrics"),
        "rate": load["rate"],
        "duration_s": load["duration_s"],
        "requests": load["requests"],
        "ok": load["ok"],
        "failed": load["errors"]["total"],
        "error_samples": load["error_samples"][:3],
        "tokens_per_s": round(load["tokens_per_s"], 1),
        "ttft_p50_ms": ms(load["ttft"]["p50"]),
        "ttft_p99_ms": ms(load["ttft"]["p99"]),
        "itl_p99_ms": ms(load["itl"]["p99"]),
        "client_tokens_per_s_p50": round(1e6 / tpot, 1) if tpot else None,
        "queued": sum(g["queued"] for g in gpus.values()),
        "queue_s": round(sum(g["queue_s"] for g in gpus.values()), 1),
        "samples": n_samples,
        "gpus": gpus,
    }


# ---- report ----------------------------------------------------------------------------


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def med_gpu(runs, g, key):
    vals = [r["gpus"][g][key] for r in runs if r["gpus"][g].get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.{nd}f}"
    return f"{int(v)}" if float(v).is_integer() else f"{v}"


def svg_chart(order, by, path):
    """Two panels: TTFT p99 per target (median bar, min-max whisker), per-GPU mean load."""
    w, h, pad = 980, 420, 60
    pw = (w - 3 * pad) / 2
    ph = h - 2 * pad - 40
    colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f"]
    gcolors = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>']

    def axes(x0, title, ymax, unit):
        out.append(f'<text x="{x0 + pw / 2}" y="{pad - 25}" text-anchor="middle" '
                   f'font-size="14" font-weight="bold">{title}</text>')
        out.append(f'<line x1="{x0}" y1="{pad}" x2="{x0}" y2="{pad + ph}" stroke="black"/>')
        out.append(f'<line x1="{x0}" y1="{pad + ph}" x2="{x0 + pw}" y2="{pad + ph}" stroke="black"/>')
        for i in range(5):
            v = ymax * i / 4
            y = pad + ph - ph * i / 4
            out.append(f'<line x1="{x0 - 4}" y1="{y}" x2="{x0 + pw}" y2="{y}" stroke="#ddd"/>')
            out.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end">{v:.{0 if ymax >= 10 else 2}f}</text>')
        out.append(f'<text x="{x0 - 45}" y="{pad + ph / 2}" transform="rotate(-90 {x0 - 45} {pad + ph / 2})" '
                   f'text-anchor="middle">{unit}</text>')

    # Left: TTFT p99.
    vals = {t: [r["ttft_p99_ms"] for r in by[t]] for t in order}
    ymax = max(max(v) for v in vals.values()) * 1.1 or 1
    x0 = pad
    axes(x0, "TTFT p99 (median of rounds, whisker min-max)", ymax, "ms")
    bw = pw / len(order)
    for i, t in enumerate(order):
        m = statistics.median(vals[t])
        x = x0 + i * bw + bw * 0.15
        y = pad + ph - ph * m / ymax
        out.append(f'<rect x="{x}" y="{y}" width="{bw * 0.7}" height="{pad + ph - y}" fill="{colors[i % 5]}"/>')
        lo, hi = min(vals[t]), max(vals[t])
        cx = x + bw * 0.35
        out.append(f'<line x1="{cx}" y1="{pad + ph - ph * lo / ymax}" x2="{cx}" '
                   f'y2="{pad + ph - ph * hi / ymax}" stroke="black"/>')
        out.append(f'<text x="{cx}" y="{y - 4}" text-anchor="middle">{m:.0f}</text>')
        label = LABELS.get(t, t).replace("ringlb ", "")
        out.append(f'<text x="{cx}" y="{pad + ph + 16}" text-anchor="middle" font-size="11">{label}</text>')
        if t != "haproxy" and t != "nginx":
            out.append(f'<text x="{cx}" y="{pad + ph + 30}" text-anchor="middle" font-size="10" fill="#555">ringlb</text>')

    # Right: per-GPU mean load.
    x0 = 2 * pad + pw
    loads = {t: [med_gpu(by[t], g, "load") or 0 for g in GPUS] for t in order}
    ymax = max(1.0, max(max(v) for v in loads.values()) * 1.1)
    axes(x0, "mean (running + waiting) / capacity per GPU", ymax, "of capacity")
    gw = pw / len(order)
    for i, t in enumerate(order):
        for j, v in enumerate(loads[t]):
            bx = x0 + i * gw + gw * 0.1 + j * gw * 0.8 / 4
            y = pad + ph - ph * v / ymax
            out.append(f'<rect x="{bx}" y="{y}" width="{gw * 0.8 / 4 - 1}" height="{pad + ph - y}" fill="{gcolors[j]}"/>')
        cx = x0 + i * gw + gw / 2
        label = LABELS.get(t, t).replace("ringlb ", "")
        out.append(f'<text x="{cx}" y="{pad + ph + 16}" text-anchor="middle" font-size="11">{label}</text>')
    y1 = pad + ph - ph * 1.0 / ymax
    out.append(f'<line x1="{x0}" y1="{y1}" x2="{x0 + pw}" y2="{y1}" stroke="black" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x0 + pw - 2}" y="{y1 - 4}" text-anchor="end" font-size="10">full (1.0)</text>')
    for j, g in enumerate(GPUS):
        lx = x0 + j * 110
        out.append(f'<rect x="{lx}" y="{h - 22}" width="12" height="12" fill="{gcolors[j]}"/>')
        desc = {"gpu1": " (half speed)", "gpu2": " (12 external)"}.get(g, "")
        out.append(f'<text x="{lx + 16}" y="{h - 12}" font-size="11">{g}{desc}</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def report(args):
    raw, svg = Path(args[0]), args[1]
    meta = read_meta(raw / "meta.tsv")
    plan_info = json.loads((raw / "plan.json").read_text())
    runs = [json.loads(p.read_text()) for p in sorted(raw.glob("*-[0-9]*.json"))]
    if not runs:
        die(f"no runs in {raw}")
    order = [t for t in meta["targets"].split() if any(r["target"] == t for r in runs)]
    by = {t: sorted((r for r in runs if r["target"] == t), key=lambda r: r["round"]) for t in order}
    rounds = int(meta["rounds"])
    for t in order:
        if len(by[t]) != rounds:
            die(f"{t}: {len(by[t])} runs, expected {rounds}")
    svg_chart(order, by, svg)
    p = print
    date = meta["date"]
    p(f"# Inference-fleet benchmark, {date}\n")
    p(f"`scripts/bench-fleet.sh` (issue 10): {len(order)} L4 balancers in front of the same mock "
      f"GPU fleet under an open-loop arrival of SSE streams, {rounds} interleaved rounds of "
      f"{meta['duration_s']} s, every run on fresh processes. Figures are medians over the rounds "
      f"(this is a 2-core VM shared with builds; per-round values are in `raw/fleet-{date}/`).\n")
    p(f"![TTFT p99 per target and per-GPU load](fleet-{date}.svg)\n")
    p("| target | TTFT p50 | TTFT p99 | inter-token p99 | tokens/s per client (p50) | "
      "streams ok | failed | queued at a GPU | time queued | fleet tokens/s |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for t in order:
        rs = by[t]
        p(f"| {LABELS.get(t, t)} | {fmt(med(rs, 'ttft_p50_ms'))} ms | {fmt(med(rs, 'ttft_p99_ms'))} ms | "
          f"{fmt(med(rs, 'itl_p99_ms'))} ms | {fmt(med(rs, 'client_tokens_per_s_p50'))} | "
          f"{fmt(med(rs, 'ok'))} | {fmt(med(rs, 'failed'))} | {fmt(med(rs, 'queued'))} | "
          f"{fmt(med(rs, 'queue_s'))} s | {fmt(med(rs, 'tokens_per_s'))} |")
    p("\n**Per-GPU load** (mean (running + waiting) / capacity over the run, the external load "
      "included; streams sent there; TTFT p99 of those streams):\n")
    p("| target | " + " | ".join(f"{g} load" for g in GPUS) + " | "
      + " | ".join(f"{g} streams" for g in GPUS) + " | "
      + " | ".join(f"{g} TTFT p99" for g in GPUS) + " |")
    p("|---|" + "---|" * 12)
    for t in order:
        rs = by[t]
        cells = [fmt(med_gpu(rs, g, "load"), 2) for g in GPUS]
        cells += [fmt(med_gpu(rs, g, "streams")) for g in GPUS]
        cells += [f"{fmt(med_gpu(rs, g, 'ttft_p99_ms'))} ms" for g in GPUS]
        p(f"| {LABELS.get(t, t)} | " + " | ".join(cells) + " |")
    p("\n**Per round** (TTFT p99 ms / streams ok / queued at a GPU):\n")
    p("| target | " + " | ".join(f"round {i}" for i in range(1, rounds + 1)) + " |")
    p("|---|" + "---|" * rounds)
    for t in order:
        p(f"| {LABELS.get(t, t)} | " + " | ".join(
            f"{fmt(r['ttft_p99_ms'])} / {r['ok']} / {r['queued']}" for r in by[t]) + " |")
    # The goal of the issue, stated from the numbers.
    if "least_load" in by and "haproxy" in by:
        ll, hp = med(by["least_load"], "ttft_p99_ms"), med(by["haproxy"], "ttft_p99_ms")
        ll_t, hp_t = med(by["least_load"], "tokens_per_s"), med(by["haproxy"], "tokens_per_s")
        met = ll <= hp / 2 and ll_t >= hp_t * 0.98
        p(f"\n**Goal** (ringlb least_load TTFT p99 at most half of HAProxy leastconn's, throughput "
          f"no worse): least_load {fmt(ll)} ms vs HAProxy {fmt(hp)} ms ({ll / hp:.2f}x); fleet "
          f"tokens/s {fmt(ll_t)} vs {fmt(hp_t)}: **{'met' if met else 'not met'}**.")
    em = meta.get("engine_metrics") == "1"
    p("\n## How it was run\n")
    p(f"- Machine: {meta['cpu']}, {meta['cores']} cores, kernel {meta['kernel']}; ringlb "
      f"`{meta['ringlb']}` (release), HAProxy {meta['haproxy']}, NGINX {meta['nginx']}.")
    p(f"- Fleet: 4 × `ringlb mock-backend --mode inference --capacity {meta['capacity']} "
      f"--tokens-per-sec {meta['tokens_per_sec']} --ttft {meta['ttft_ms']}ms --max-tokens-dist "
      f"{meta['lengths']} --metrics-flavor vllm`; slowdowns {meta['slowdowns']}, external load "
      f"{meta['externals']} (gpu1 at half speed, gpu2 with {meta['externals'].split()[2]} phantom "
      "streams that do not pass through the balancer, drawing the same lengths). No KV budget: "
      "the queue is the slots' (a KV budget would add a second cause of queueing that none of "
      "the L4 balancers but least_load can see, and make the result depend on its size).")
    p(f"- Clients: `ringlb-load sse --rate {plan_info['rate']} --connections {meta['connections']} "
      f"--new-connection-per-request --duration {meta['duration_s']}s --max-tokens-dist "
      f"{meta['lengths']} --seed ROUND --timeout {meta['client_timeout']}`: open loop, latency "
      "from each intended start; each request's max_tokens drawn from the seed, so every target "
      "of a round gets the same sequence of lengths.")
    p("- Rate: " + "; ".join(x.removeprefix("plan: ") for x in plan_info["explain"]) + ".")
    if em:
        ll_conf = (' and `[pool.engine_metrics]` (`flavor = "vllm"`, `interval = "'
                   + meta["scrape_interval"] + '"`)')
    else:
        ll_conf = (" **without** `[pool.engine_metrics]` (the scraper was not merged when this "
                   "ran: least_load then scores exactly as least_connections)")
    p('- Targets, one worker/thread each, TCP (L4): ringlb `workers = 1` with `balance = '
      '"least_load"`' + ll_conf + ", `least_connections`, `round_robin`; HAProxy `nbthread 1`, "
      "`mode tcp`, `balance leastconn`; NGINX `worker_processes 1`, `stream` with `least_conn`.")
    p(f"- Load per GPU: each mock's `vllm:num_requests_running` + `vllm:num_requests_waiting` "
      f"sampled every {meta['sample_interval_s']} s; queued streams: the mocks' "
      "`ringlb_mock_client_requests_queued_total` (client streams that found no free slot; the "
      "mocks also export vLLM's `vllm:request_queue_time_seconds` histogram), time queued: "
      "`ringlb_mock_client_queue_seconds_total`. Inter-token latency: gaps between token reads; "
      "tokens/s per client: 1 / time per output token after the first, median stream.")
    p("\nReproduce:\n")
    p("```sh")
    p(f"ROUNDS={rounds} DURATION={meta['duration_s']} scripts/bench-fleet.sh")
    p("```")


# ---- selftest --------------------------------------------------------------------------


class Tests(unittest.TestCase):
    def test_metrics_parse_labels_sums_and_junk(self):
        text = (
            "# HELP vllm:num_requests_running x\n# TYPE vllm:num_requests_running gauge\n"
            'vllm:num_requests_running{model_name="a",engine="0"} 3\n'
            'vllm:num_requests_running{model_name="b",engine="0"} 2\n'
            'vllm:request_queue_time_seconds_bucket{model_name="a",le="+Inf"} 7\n'
            "garbage line here\nvllm:num_requests_waiting NaN\nbad_value x\n"
        )
        p = parse_metrics(text)
        self.assertEqual(metric(p, "vllm:num_requests_running"), 5)
        self.assertTrue(math.isnan(metric(p, "vllm:num_requests_waiting")))
        self.assertIsNone(metric(p, "missing"))
        self.assertEqual(metric(p, "missing", 0.0), 0.0)
        self.assertEqual(metric(p, "vllm:request_queue_time_seconds_bucket"), 7)

    def test_lengths_and_their_mean(self):
        self.assertEqual(mean_tokens("fixed:40"), 40)
        m = mean_tokens("lognormal:median=40,sigma=1,max=100000")
        self.assertAlmostEqual(m, 40 * math.exp(0.5), delta=0.01)
        # The clamp at max pulls the mean down.
        self.assertLess(mean_tokens("lognormal:median=40,sigma=2,max=200"), 200)
        self.assertLess(mean_tokens("lognormal:median=40,sigma=2,max=200"),
                        mean_tokens("lognormal:median=40,sigma=2,max=100000"))
        with self.assertRaises(ValueError):
            parse_lengths("uniform:3")

    def test_gpu_load_averages_samples_and_skips_errors(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s.jsonl"
            rows = [
                {"t": 1, "gpus": {"gpu0": {"running": 8, "waiting": 0}, "gpu2": {"error": "x"}}},
                {"t": 2, "gpus": {"gpu0": {"running": 16, "waiting": 8}, "gpu2": {"running": 12, "waiting": 0}}},
            ]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            loads, n = gpu_load(path, 16)
            self.assertEqual(n, 2)
            self.assertAlmostEqual(loads["gpu0"], (0.5 + 1.5) / 2)
            self.assertAlmostEqual(loads["gpu2"], 0.75)
            self.assertIsNone(loads["gpu1"])
            path.write_text(json.dumps({"t": 1, "gpus": {"gpu0": {"error": "refused"}}}) + "\n")
            with self.assertRaises(ValueError):
                gpu_load(path, 16)

    def test_percentile_nearest_rank(self):
        self.assertIsNone(percentile([], 0.5))
        self.assertEqual(percentile([3, 1, 2], 0.5), 2)
        self.assertEqual(percentile(list(range(1, 101)), 0.99), 99)


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "plan":
        plan(args)
    elif cmd == "sample":
        sample(args)
    elif cmd == "run":
        try:
            print(json.dumps(summarize(Path(args[0])), indent=1))
        except (OSError, KeyError, ValueError) as e:
            die(f"{args[0]}: {e}")
    elif cmd == "report":
        report(args)
    elif cmd == "selftest":
        unittest.main(argv=[sys.argv[0]], exit=True)
    else:
        die(f"unknown command {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main()
