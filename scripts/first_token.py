"""Shared by the scripts that drive the real server (crash_loop.py,
soak.py): start `caseledger serve` on a new store and read the first DSL
token it prints, once."""
import os
import re
import secrets
import subprocess

# Personal data is sealed under a key-encryption key: the servers these
# scripts start (and restart) share one, made for the run unless given.
os.environ.setdefault("CASELEDGER_KEK", secrets.token_hex(32))


def serve_new_store(binary, data, port, log):
    """Starts the server on the new store `data`; returns the process and
    the DSL token (None if none was printed). Its stdout stays a pipe the
    caller drains or closes."""
    proc = subprocess.Popen(
        [binary, "serve", "--data", data, "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    for line in proc.stdout:
        m = re.search(r"dsl\s+\(actor dsl-1\):\s+(\S+)", line)
        if m:
            return proc, m.group(1)
    return proc, None
