"""A closed-loop client for `poselab live --publish`: read poses, act on them, time them.

Start the publisher, then this client (or the other way round; `--wait-subscribers 1` makes
poselab wait for it):

    poselab live models/fastest_lite0 --source 0 --publish tcp://127.0.0.1:5555 --no-stdout
    python examples/live_client.py tcp://127.0.0.1:5555 --bodypart snout --zone 0,0,320,240

Each message is one JSON object (see README, "Real time: `poselab live`"); any language with
a ZeroMQ SUB socket (or a UDP socket, for `--publish udp://...`) can read it the same way.
This client prints one line per pose with the end-to-end latency it sees (capture to
arrival, same machine clock), and "IN"/"OUT" when the chosen bodypart enters or leaves the
zone: the place for a trigger (a TTL pulse, a reward valve, a laser).

Only pyzmq is needed (and nothing for UDP); poselab itself is not imported.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from urllib.parse import urlsplit


def messages(url: str):
    """Yield each published pose as bytes, from tcp://HOST:PORT (ZeroMQ) or udp://HOST:PORT."""
    parts = urlsplit(url)
    if parts.scheme == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((parts.hostname, parts.port))  # poselab sends its datagrams here
        while True:
            yield sock.recv(65536)
    import zmq

    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.connect(url)
    sub.setsockopt(zmq.SUBSCRIBE, b"")  # every message
    while True:
        yield sub.recv()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="tcp://HOST:PORT or udp://HOST:PORT, as given to --publish")
    parser.add_argument("--bodypart", help="bodypart to watch (default: the first)")
    parser.add_argument("--zone", help="x1,y1,x2,y2 in frame pixels: report entering/leaving")
    parser.add_argument("--pcutoff", type=float, default=0.6, help="ignore less likely points")
    parser.add_argument("--count", type=int, default=0, help="stop after N poses (0: never)")
    args = parser.parse_args()
    zone = [float(v) for v in args.zone.split(",")] if args.zone else None
    inside, n, latencies = False, 0, []
    try:
        for raw in messages(args.url):
            arrived = time.time()
            msg = json.loads(raw)
            bodypart = args.bodypart or next(iter(msg["pose"]))
            x, y, likelihood = msg["pose"][bodypart]
            latency = (arrived - msg["timestamp"]) * 1000  # capture -> here
            latencies.append(latency)
            seen = x is not None and likelihood >= args.pcutoff
            line = (f"frame {msg['frame']:6d}  {bodypart} "
                    + (f"({x:7.1f}, {y:7.1f}) p={likelihood:.2f}" if seen else "not seen")
                    + f"  latency {latency:6.1f} ms  dropped {msg['dropped']}")
            if zone and seen:
                now_inside = zone[0] <= x <= zone[2] and zone[1] <= y <= zone[3]
                if now_inside != inside:
                    line += "  IN" if now_inside else "  OUT"  # trigger here
                inside = now_inside
            print(line, flush=True)
            n += 1
            if args.count and n >= args.count:
                break
    except KeyboardInterrupt:
        pass
    if latencies:
        latencies.sort()
        print(f"{n} poses; latency at this client p50 {latencies[len(latencies) // 2]:.1f} ms,"
              f" max {latencies[-1]:.1f} ms")


if __name__ == "__main__":
    main()
