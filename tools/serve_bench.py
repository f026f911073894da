#!/usr/bin/env python3
"""Throughput of a running `btlm serve`: total generated tokens per second at several numbers of
concurrent streaming clients (standard library only).

    ./btlm serve -m MODEL --parallel 16 --port 8080 &
    python3 tools/serve_bench.py --url http://127.0.0.1:8080 --streams 1,4,16 --tokens 32

Each client streams one /v1/completions request (greedy, ignore_eos, so every stream generates
exactly --tokens tokens) with a prompt of its own. Reported per concurrency: wall time from the
first request to the last [DONE], total tokens generated (from the usage chunks), total tokens/s,
and the median time to the first token.
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse

PROMPTS = ["And God said", "In the beginning", "Blessed are the", "The fortune", "You will meet",
           "And it came to pass", "Thou shalt", "A wise man", "The LORD is my", "Honour thy", "Love is",
           "Today you", "And the earth", "Beware of", "Fear not", "For God so"]


def one_stream(url, prompt, tokens, out, i):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=3600)
    body = json.dumps({"prompt": prompt, "max_tokens": tokens, "temperature": 0, "ignore_eos": True,
                       "stream": True, "stream_options": {"include_usage": True}})
    start = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    first = None
    generated = 0
    for raw in resp:
        line = raw.decode("utf-8").strip()
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            break
        event = json.loads(data)
        if event.get("usage"):
            generated = event["usage"]["completion_tokens"]
        elif first is None and event["choices"] and event["choices"][0]["text"]:
            first = time.perf_counter() - start
    out[i] = (generated, first if first is not None else float("nan"), time.perf_counter())
    conn.close()


def run(url, streams, tokens):
    out = [None] * streams
    threads = [threading.Thread(target=one_stream, args=(url, PROMPTS[i % len(PROMPTS)], tokens, out, i))
               for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = max(o[2] for o in out) - start
    total = sum(o[0] for o in out)
    return wall, total, statistics.median(o[1] for o in out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--streams", default="1,4,16")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=4, help="tokens of one warm-up request first (0: none)")
    a = ap.parse_args()
    if a.warmup:
        run(a.url, 1, a.warmup)
    print("| streams | tokens/stream | wall s | tokens | total tokens/s | median first token s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in [int(s) for s in a.streams.split(",")]:
        wall, total, ttft = run(a.url, n, a.tokens)
        print(f"| {n} | {a.tokens} | {wall:.1f} | {total} | {total / wall:.2f} | {ttft:.2f} |", flush=True)


if __name__ == "__main__":
    main()
