#!/usr/bin/env python3
"""Failover with active health checks, measured against the real ringlb binary.

Starts three mock backends and ringlb (two workers) on 127.0.0.1:19100-19103, opens ~95 new
connections per second for 10 s (one GET /metrics each, 2 s client timeout), freezes backend c
with SIGSTOP 3 s in, and prints how many connections opened after the freeze failed and how long
after it the last one went to the frozen node.

Usage: scripts/health-failover.py checks|none [round_robin|least_connections] [path/to/ringlb]
Not part of CI (fixed ports, wall-clock timing).
"""
import socket, threading, time, subprocess, sys, os, signal, json
mode = sys.argv[1]  # "checks" or "none"
balance = sys.argv[2] if len(sys.argv) > 2 else "round_robin"
B = sys.argv[3] if len(sys.argv) > 3 else "target/debug/ringlb"
work = "target/health-failover"
os.makedirs(work, exist_ok=True)
ports = [19101, 19102, 19103]
procs = [subprocess.Popen([B, "mock-backend", "--listen", f"127.0.0.1:{p}", "--name", n, "--threads", "1"], stderr=subprocess.DEVNULL) for p, n in zip(ports, "abc")]
health = '[pool.health]\ninterval = "500ms"\ntimeout = "250ms"\nfall = 2\nrise = 2\n' if mode == "checks" else ""
cfg = f'''[runtime]
workers = 2
[[listener]]
name = "llm"
bind = "127.0.0.1:19100"
pool = "gpu"
[[pool]]
name = "gpu"
connect_timeout = "1s"
balance = "{balance}"
{health}
''' + "".join(f'[[pool.backend]]\naddr = "127.0.0.1:{p}"\n' for p in ports)
open(f"{work}/cfg.toml", "w").write(cfg)
log = open(f"{work}/ringlb-{mode}.log", "w")
lb = subprocess.Popen([B, "run", "-c", f"{work}/cfg.toml"], stderr=log)
time.sleep(1.5)
results = []
lock = threading.Lock()
t0 = time.time()
def one(start):
    r = "?"
    try:
        s = socket.create_connection(("127.0.0.1", 19100), timeout=2)
        s.settimeout(2)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
        s.close()
        r = "noanswer"
        for line in data.decode(errors="replace").split("\r\n"):
            if line.startswith("x-backend: "): r = line[11:].strip()
    except socket.timeout: r = "timeout"
    except ConnectionResetError: r = "reset"
    except Exception as e: r = type(e).__name__
    with lock: results.append((start - t0, r))
threads = []
stop_at = 3.0
stopped = False
while time.time() - t0 < 10:
    now = time.time()
    if not stopped and now - t0 >= stop_at:
        os.kill(procs[2].pid, signal.SIGSTOP); stopped = True; t_stop = now - t0
    th = threading.Thread(target=one, args=(now,)); th.start(); threads.append(th)
    time.sleep(0.01)
for th in threads: th.join()
os.kill(procs[2].pid, signal.SIGCONT)
lb.send_signal(signal.SIGINT); lb.wait()
for p in procs: p.kill()
after = [(t, r) for t, r in results if t >= t_stop]
bad = [(t, r) for t, r in after if r not in ("a", "b")]
last_c = max([t for t, r in after if r in ("c", "timeout")], default=None)
print(json.dumps({"mode": mode, "balance": balance, "streams": len(results), "after_stop": len(after),
  "failed_after_stop": len(bad), "kinds": sorted(set(r for _, r in bad)),
  "last_stream_to_stopped_node_s_after_stop": None if last_c is None else round(last_c - t_stop, 3)}))
