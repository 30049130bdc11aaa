"""Small helpers over jupyter_client for the arrakis-ts kernel tests (bounded timeouts everywhere)."""
import os
import threading
import time

from jupyter_client.manager import KernelManager

KERNEL = "arrakis-ts"
# The driver (test/kernel.test.ts) points this at a temporary folder outside the project.
KERNEL_CWD = os.environ.get("ARRAKIS_KERNEL_CWD") or None
STARTUP_TIMEOUT = 120
CELL_TIMEOUT = 60


def start(cwd=KERNEL_CWD, **kw):
    """Starts the kernel; `kw` goes to KernelManager.start_kernel (env, stderr, ...)."""
    km = KernelManager(kernel_name=KERNEL)
    km.start_kernel(cwd=cwd, **kw)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
    return km, kc


def stop(km, kc):
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def run(kc, code, timeout=CELL_TIMEOUT, **kw):
    """Executes `code`; returns (reply content, iopub outputs without status/execute_input)."""
    outputs = []

    def hook(msg):
        if msg["msg_type"] not in ("status", "execute_input"):
            outputs.append(msg)

    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook, **kw)
    return reply["content"], outputs


def result_text(outputs):
    for m in outputs:
        if m["msg_type"] == "execute_result":
            return m["content"]["data"]["text/plain"]
    return None


def run_interrupted(km, kc, code, after=1.0, timeout=30):
    """Runs `code` and sends interrupt_request (interrupt_mode "message") after `after` seconds."""
    timer = threading.Timer(after, km.interrupt_kernel)
    timer.start()
    t0 = time.monotonic()
    try:
        reply, outputs = run(kc, code, timeout=timeout)
    finally:
        timer.cancel()
    return reply, outputs, time.monotonic() - t0
