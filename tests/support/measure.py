"""Runs a command and writes its peak resident memory (KiB) to a file: the kernel's account.

Usage: measure.py PEAK_FILE PROGRAM [ARG...]

Used by orgop-testkit's `measure`. Sampling /proc/<pid>/status from the test misses a process
that ends before the first sample; `getrusage(RUSAGE_CHILDREN)` does not. It runs here, in a
small process, because a child's `ru_maxrss` starts from its parent's memory (the page tables
it was spawned from), and a test process can be hundreds of MB: the figure is the command's own
peak or this script's ~10 MB, whichever is larger. The command inherits stdin, stdout, stderr,
the working directory and the environment; its exit status is passed on, and a signal that
ended it ends this process the same way.
"""
import os
import resource
import signal
import sys

peak_file, argv = sys.argv[1], sys.argv[2:]
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status = os.waitpid(pid, 0)
with open(peak_file, "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
