#!/usr/bin/python3
"""Runs examples/mock_api.py for the benchmarks, unchanged except for one
socket option: TCP_NODELAY on accepted connections.

The mock writes the response head and the body in two send() calls. With
Nagle's algorithm on, the body waits for the client's ACK of the head,
which a keep-alive client delays by up to 40 ms (Linux delayed ACK), so
every request on a reused connection costs ~40 ms whoever the client is.
That is a property of the target, not of the tools under test, and it
would make every request-rate figure a measure of the ACK timer.

When the mock already disables Nagle itself this wrapper changes nothing.
Prints "bench-mock: nagle=patched" or "bench-mock: nagle=mock" on stderr,
then whatever mock_api.py prints.

    /usr/bin/python3 bench/lib/mock_server.py [mock_api.py options]
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import mock_api  # noqa: E402


def main():
    if getattr(mock_api.Handler, "disable_nagle_algorithm", False):
        sys.stderr.write("bench-mock: nagle=mock\n")
    else:
        mock_api.Handler.disable_nagle_algorithm = True
        sys.stderr.write("bench-mock: nagle=patched\n")
    sys.stderr.flush()
    return mock_api.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
