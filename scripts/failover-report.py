#!/usr/bin/env python3
"""Figures of scripts/failover.sh.

  failover-report.py run DIR      one run's files -> its summary as JSON on stdout
  failover-report.py report RAW   the summaries in RAW (CONFIG-RUN.json) -> markdown report

A run's DIR holds meta.tsv (times of the kill, the freeze and the thaw; which node is which),
requests.jsonl (ringlb-load --request-log: one line per stream, Unix times), load.json (the
load tool's report), ringlb.log (ringlb with --log-format json: access lines and the debug
lines of replays) and metrics.txt (a scrape of /metrics after the load).

Every figure comes from those files; a run whose files disagree (a request log that misses
streams the report counts) is an error, never a figure.
"""

import json
import re
import statistics
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

# A stream is "live" on a node at a moment if its first byte came before it and it had not
# ended; the clocks of the three logs are the same host clock, read at slightly different
# points, so allow a little slack.
SLACK_S = 0.05
REPLAY_MSG = "backend failed before its first byte; replaying to another"
SLOW_TTFT_S = 1.0


def die(msg):
    print(f"failover-report: {msg}", file=sys.stderr)
    sys.exit(1)


def ts(text):
    """RFC 3339 UTC timestamp (tracing's JSON) -> Unix seconds."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", text)
    if not m:
        die(f"unexpected timestamp {text!r}")
    base = datetime.fromisoformat(m.group(1) + "+00:00").timestamp()
    return base + float(m.group(2) or 0)


def read_meta(path):
    meta = {}
    for line in path.read_text().splitlines():
        key, *vals = line.split("\t")
        meta[key] = vals if len(vals) > 1 else vals[0]
    return meta


def metrics(path):
    out = []
    for line in path.read_text().splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def run_summary(d):
    meta = read_meta(d / "meta.tsv")
    t_kill, t_stop = float(meta["t_kill"]), float(meta["t_stop"])
    t0, t_cont = float(meta["t0"]), float(meta["t_cont"])
    killed_name, killed_addr = meta["killed"]
    hung_name, hung_addr = meta["hung"]
    fbt = float(meta["first_byte_timeout_s"])
    load = json.loads((d / "load.json").read_text())
    reqs = [json.loads(l) for l in (d / "requests.jsonl").read_text().splitlines()]
    if len(reqs) != load["requests"]:
        die(f"{d}: request log has {len(reqs)} lines, the report counts {load['requests']}")

    def phase(t):
        if t is None:
            return "-"
        if t < t_kill:
            return "before the kill"
        if t < t_stop:
            return "kill..freeze"
        if t < t_stop + 5:
            return "freeze..+5s"
        return "freeze+5s.."

    def rel(t):
        return None if t is None else round(t - t0, 3)

    failed = [r for r in reqs if not r["ok"]]
    killed_live, hung_live, other = [], [], []
    for r in failed:
        fb = r["first_byte"]
        if r["backend"] == killed_name and fb is not None and fb < t_kill + SLACK_S \
                and r["end"] >= t_kill - SLACK_S:
            killed_live.append(r)
        elif r["backend"] == hung_name and fb is not None and fb < t_stop + SLACK_S \
                and r["end"] >= t_stop - SLACK_S:
            hung_live.append(r)
        else:
            other.append(r)
    slow = [r for r in reqs if r["ok"] and r["first_token"] is not None
            and r["first_token"] - r["start"] > SLOW_TTFT_S]

    access, replays, downs, connect_failed = [], [], [], Counter()
    for line in (d / "ringlb.log").read_text().splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        msg = e.get("message", "")
        at = ts(e["timestamp"])
        if e.get("target") == "ringlb::access" and msg == "stream closed":
            e["close"] = at
            e["start"] = at - e["duration_ms"] / 1000
            access.append(e)
        elif msg == REPLAY_MSG:
            replays.append((at, e.get("how"), e.get("conn")))
        elif msg.startswith("backend down"):
            downs.append((at, e.get("backend"), msg))
        elif msg == "connect failed":
            connect_failed[e.get("backend")] += 1

    # A whole answer is about as long as every other (same max_tokens, ~160 bytes a token,
    # ids a few digits apart); a stream cut by the kill got less. Streams that ended whole at
    # the moment of the kill are not counted as cut. A frozen node's streams get the rest of
    # their answer after SIGCONT (ringlb drains it), so there the sign is a late close.
    whole = statistics.median([a["bytes_down"] for a in access if a["reason"] == "backend_fin"]
                              or [0])

    def live_at(backend, t, cut):
        return [a for a in access if a["backend"] == backend and a["start"] < t
                and a["close"] >= t - SLACK_S and a["bytes_down"] > 0 and cut(a)]

    lb_killed_live = live_at(killed_addr, t_kill, lambda a: a["bytes_down"] < whole - 100)
    lb_hung_live = live_at(hung_addr, t_stop, lambda a: a["close"] > t_stop + 0.5)
    ended_on_hung_after = [a for a in access if a["backend"] == hung_addr and a["start"] > t_stop]
    silent_after = [r for r in replays if r[1] == "Silent" and r[0] - fbt > t_stop - SLACK_S]
    closed_after_kill = [r for r in replays if r[1] == "Closed" and r[0] >= t_kill - SLACK_S]
    # When each new stream reached the frozen node: one replayed away for its silence got its
    # request there first_byte_timeout before the replay; one that stayed started there.
    sent_to_hung = [r[0] - fbt for r in silent_after] + [a["start"] for a in ended_on_hung_after]
    last_to_hung = round(max(sent_to_hung) - t_stop, 3) if sent_to_hung else None

    def first_down(addr, after):
        hits = [(t, m) for t, b, m in downs if b == addr and t >= after - SLACK_S]
        return (round(min(hits)[0] - after, 3), min(hits)[1]) if hits else (None, None)

    hung_down_s, hung_down_by = first_down(hung_addr, t_stop)
    killed_down_s, killed_down_by = first_down(killed_addr, t_kill)
    m = metrics(d / "metrics.txt")

    def total(name, **want):
        return int(sum(v for n, l, v in m if n == name
                       and all(l.get(k) == w for k, w in want.items())))

    by_reason = {}
    for n, l, v in m:
        if n == "ringlb_backend_streams_total" and v:
            by_reason.setdefault(l["backend"], {})[l["reason"]] = int(v)
    replays_metric = total("ringlb_worker_replays_total")
    if replays_metric != len(replays):
        die(f"{d}: {len(replays)} replay lines in the log, ringlb_worker_replays_total {replays_metric}")

    def show(r):
        return {"start": rel(r["start"]), "first_byte": rel(r["first_byte"]),
                "end": rel(r["end"]), "phase": phase(r["start"]), "error": r["error"],
                "backend": r["backend"], "tokens": r["tokens"], "detail": r["detail"]}

    # Access lines of streams that ended badly and were not live on a failing node: what
    # ringlb saw of the "other" client failures.
    live_conns = {a["conn"] for a in lb_killed_live + lb_hung_live}
    bad = ("backend_reset", "first_byte_timeout", "connect_failed", "no_backend", "error")
    lb_other = [a for a in access if a["reason"] in bad and a["conn"] not in live_conns
                and a["start"] >= t0 - SLACK_S]  # not the readiness probe
    return {
        "config": meta["config"], "run": int(meta["run"]), "loadavg": meta.get("loadavg"),
        "killed": [killed_name, killed_addr], "hung": [hung_name, hung_addr],
        "kill_at_s": round(t_kill - t0, 3), "stop_at_s": round(t_stop - t0, 3),
        "cont_at_s": round(t_cont - t0, 3),
        "requests": load["requests"], "ok": load["ok"], "failed": load["errors"]["total"],
        "errors": load["errors"],
        "failed_killed_live": len(killed_live), "failed_hung_live": len(hung_live),
        "failed_other": len(other),
        "other_by_phase": dict(Counter(phase(r["start"]) for r in other)),
        "other_by_kind": dict(Counter(f'{r["error"]} on {r["backend"] or "-"}' for r in other)),
        "other_samples": [show(r) for r in other[:30]],
        "lb_live_on_killed": len(lb_killed_live),
        "lb_live_on_killed_reasons": dict(Counter(a["reason"] for a in lb_killed_live)),
        "lb_live_on_hung": len(lb_hung_live),
        "lb_live_on_hung_reasons": dict(Counter(a["reason"] for a in lb_hung_live)),
        "new_to_hung": len(sent_to_hung), "last_to_hung_s": last_to_hung,
        "ended_on_hung_after_freeze": len(ended_on_hung_after),
        "ended_on_hung_after_freeze_reasons": dict(Counter(a["reason"] for a in ended_on_hung_after)),
        "replayed_from_hung": len(silent_after), "replayed_after_kill": len(closed_after_kill),
        "replays_total": replays_metric,
        "first_byte_timeouts_total": total("ringlb_worker_first_byte_timeouts_total"),
        "connect_retries_total": total("ringlb_worker_connect_retries_total"),
        "connect_failed_lines": dict(connect_failed),
        "hung_down_after_s": hung_down_s, "hung_down_by": hung_down_by,
        "killed_down_after_s": killed_down_s, "killed_down_by": killed_down_by,
        "slow_streams": len(slow), "ttft_p99_ms": load["ttft"]["p99"] / 1000,
        "streams_by_reason": by_reason,
        "lb_other_lines": [{k: a.get(k) for k in ("conn", "backend", "reason", "duration_ms",
                                                   "bytes_up", "bytes_down")}
                           | {"start": rel(a["start"]), "close": rel(a["close"])}
                           for a in lb_other[:30]],
        "lb_other_count": len(lb_other),
    }


CONFIGS = {
    "replay": "defaults (`retries = 2`, `replay_buffer = 65536`), `first_byte_timeout = \"1s\"`",
    "noreplay": "`replay_buffer = 0`, `first_byte_timeout` off (`retries = 2`)",
    "retries0": "`retries = 0`, `first_byte_timeout = \"1s\"` (`replay_buffer` default)",
}
# (summary key, column header)
COLUMNS = [
    ("requests", "streams"),
    ("failed", "failed"),
    ("failed_killed_live", "live on killed node"),
    ("failed_hung_live", "live on frozen node"),
    ("failed_other", "**other failures**"),
    ("new_to_hung", "new streams to frozen node"),
    ("last_to_hung_s", "last one, s after freeze"),
    ("replayed_from_hung", "replayed from frozen node"),
    ("replayed_after_kill", "replayed from killed node"),
    ("hung_down_after_s", "frozen node down after, s"),
    ("slow_streams", "ok but TTFT > 1 s"),
]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def median(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    m = statistics.median(vals)
    return m if isinstance(m, float) or any(isinstance(v, float) for v in vals) else m


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def report(raw):
    meta = read_meta(raw / "meta.tsv")
    runs = [json.loads(p.read_text()) for p in sorted(raw.glob("*.json"))]
    if not runs:
        die(f"no run summaries in {raw}")
    order = [c for c in CONFIGS if any(r["config"] == c for r in runs)]
    runs.sort(key=lambda r: (order.index(r["config"]), r["run"]))
    n = meta["runs"]
    p = print
    p(f"# Failover figure, {meta['date']}\n")
    p(f"Generated by `scripts/failover.sh` (see scripts/README.md). Three mock inference "
      f"backends (`ringlb mock-backend`, one process each) behind ringlb (release build, 2 "
      f"workers, `least_connections`, `[pool.health]` http `/health` every 1 s, timeout "
      f"500 ms, fall 2, rise 2, access log on), `ringlb-load sse --rate {meta['rate']} "
      f"--new-connection-per-request` for {meta['duration_s']} s ({meta['max_tokens']} tokens "
      f"at {meta['tokens_per_sec']}/s per stream, client timeout {meta['client_timeout']}). "
      f"At +{meta['kill_at_s']} s `gpu-a` is killed (SIGKILL, not restarted); at "
      f"+{meta['stop_at_s']} s `gpu-b` is frozen (SIGSTOP) until the end of the load "
      f"(SIGCONT). Medians of {n} interleaved runs per configuration; every run on fresh "
      f"processes; {meta['cores']} shared cores ({meta['cpu']}), everything on loopback.\n")
    p("Failures are new streams the client saw fail (error or no `[DONE]`). *Live on killed / "
      "frozen node*: the stream had its first byte from that node before it died or froze, "
      "so its answer was under way and no L4 balancer can move it (a frozen node's streams "
      "end at the client's timeout). *Other*: every other failure (the goal is 0). *New "
      "streams to frozen node*: streams ringlb sent to it after the freeze (ended there, or "
      "replayed away after `first_byte_timeout`); *last one*: when the last of them reached "
      "it. *Replayed*: moved to another backend before any byte of the failed one reached "
      "the client.\n")
    p("## Medians\n")
    rows = []
    for c in order:
        group = [r for r in runs if r["config"] == c]
        rows.append([c] + [fmt(median([r[k] for r in group])) for k, _ in COLUMNS])
    p(table(["configuration"] + [h for _, h in COLUMNS], rows))
    p("")
    for c in order:
        p(f"- `{c}`: {CONFIGS[c]}")
    p("\n## Every run\n")
    rows = [[r["config"], str(r["run"])] + [fmt(r[k]) for k, _ in COLUMNS] for r in runs]
    p(table(["configuration", "run"] + [h for _, h in COLUMNS], rows))
    p("\nWhat ringlb saw (access log, debug lines, `/metrics`):\n")
    rows = []
    for r in runs:
        rows.append([r["config"], str(r["run"]),
                     f'{r["lb_live_on_killed"]} {json.dumps(r["lb_live_on_killed_reasons"])}',
                     f'{r["lb_live_on_hung"]} {json.dumps(r["lb_live_on_hung_reasons"])}',
                     f'{r["ended_on_hung_after_freeze"]} {json.dumps(r["ended_on_hung_after_freeze_reasons"])}',
                     str(r["replays_total"]), str(r["first_byte_timeouts_total"]),
                     f'{fmt(r["killed_down_after_s"])} ({r["killed_down_by"] or "-"})',
                     f'{fmt(r["hung_down_after_s"])} ({r["hung_down_by"] or "-"})',
                     r["loadavg"] or "-"])
    p(table(["configuration", "run", "live on killed node at the kill, by close reason",
             "live on frozen node at the freeze", "new streams ended on frozen node",
             "replays", "first-byte timeouts", "killed node down after, s (by)",
             "frozen node down after, s (by)", "load average at start"], rows))
    p("\n`ringlb_backend_streams_total` of the two failing nodes by close reason, after the "
      "load (a stream replayed away is counted on the node it left, under the reason it "
      "left for):\n")
    rows = []
    for r in runs:
        by = r["streams_by_reason"]
        rows.append([r["config"], str(r["run"]),
                     json.dumps(by.get(r["killed"][1], {}), sort_keys=True),
                     json.dumps(by.get(r["hung"][1], {}), sort_keys=True)])
    p(table(["configuration", "run", "killed node", "frozen node"], rows))
    p("\n## Other failures\n")
    if not any(r["failed_other"] for r in runs):
        p("None in any run.")
    for r in runs:
        if not r["failed_other"]:
            continue
        p(f'### {r["config"]} run {r["run"]}: {r["failed_other"]} other failures\n')
        p(f'By phase of their start: {json.dumps(r["other_by_phase"])}; by error and backend: '
          f'{json.dumps(r["other_by_kind"])}. Times are seconds into the load (kill at '
          f'{r["kill_at_s"]}, freeze at {r["stop_at_s"]}).\n')
        rows = [[fmt(s["start"]), fmt(s["first_byte"]), fmt(s["end"]), s["error"],
                 s["backend"] or "-", str(s["tokens"]), s["detail"].replace("|", "/")]
                for s in r["other_samples"][:10]]
        p(table(["start", "first byte", "end", "error", "backend", "tokens", "detail"], rows))
        if r["lb_other_lines"]:
            p(f'\nringlb closed {r["lb_other_count"]} streams badly that were not live on a '
              f'failing node (first 10):\n')
            rows = [[str(a["conn"]), a["backend"], a["reason"], fmt(a["start"]), fmt(a["close"]),
                     str(a["bytes_up"]), str(a["bytes_down"])] for a in r["lb_other_lines"][:10]]
            p(table(["conn", "backend", "reason", "start", "close", "bytes up", "bytes down"], rows))
        p("")
    p("\n## Setup\n")
    p(table(["", ""], [[k, " ".join(v) if isinstance(v, list) else v] for k, v in meta.items()]))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("run", "report"):
        die("usage: failover-report.py run DIR | report RAW")
    path = Path(sys.argv[2])
    if sys.argv[1] == "run":
        print(json.dumps(run_summary(path), indent=1))
    else:
        report(path)


if __name__ == "__main__":
    main()
