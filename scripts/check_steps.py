"""What the scripts that run the real binary as its users would
(notify_check.py, replication_check.py) share: stopping at the first
surprise with a message, running a subcommand, and waiting for a
condition."""
import os
import subprocess
import sys
import time

NAME = os.path.splitext(os.path.basename(sys.argv[0]))[0]


def fail(msg):
    print(f"{NAME}: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(binary, *args):
    """Runs `caseledger ARGS`; its stdout, stripped, or fail()."""
    p = subprocess.run([binary, *args], capture_output=True, text=True,
                       timeout=300)
    if p.returncode != 0:
        fail(f"caseledger {' '.join(args)} exited {p.returncode}: "
             f"{p.stderr.strip()[-2000:]}")
    return p.stdout.strip()


def wait_for(what, cond, timeout=60):
    """Polls `cond` every 50 ms until it returns something true, which is
    returned; fail() after `timeout` seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    fail("timed out waiting for " + what)
