"""Kernel start to first rendered heatmap, as a Jupyter client sees it (part of `npm run bench`).

Starts the arrakis-ts kernel from the kernelspec on JUPYTER_PATH, runs one cell that shows an attention
pattern, and reports (JSON on stdout) the seconds from start_kernel to: kernel ready, the cell's first output
carrying an image/svg+xml or text/html heatmap, and the reply. Also reports which model the kernel preloaded.
"""
import json
import sys
import time

from jupyter_client.manager import KernelManager

CELL = "attention.attentionPatterns([1, 2, 3, 4, 5, 6, 7, 8], 0, 0)"


def main():
    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else 180
    t0 = time.monotonic()
    km = KernelManager(kernel_name="arrakis-ts")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    out = {}
    try:
        kc.wait_for_ready(timeout=timeout)
        out["ready_s"] = time.monotonic() - t0
        first = {}

        def hook(msg):
            if msg["msg_type"] in ("display_data", "execute_result", "update_display_data") and "heatmap_s" not in first:
                data = msg["content"].get("data", {})
                if "image/svg+xml" in data or "text/html" in data:
                    first["heatmap_s"] = time.monotonic() - t0
                    first["mime"] = sorted(data.keys())
            if msg["msg_type"] == "error":
                first["error"] = f"{msg['content'].get('ename')}: {msg['content'].get('evalue')}"

        reply = kc.execute_interactive(CELL, timeout=timeout, output_hook=hook)
        out["reply_s"] = time.monotonic() - t0
        out["status"] = reply["content"]["status"]
        out.update(first)
        model = []
        kc.execute_interactive("String(model)", timeout=60, output_hook=lambda m: model.append(m["content"]["data"]["text/plain"]) if m["msg_type"] == "execute_result" else None)
        out["model"] = model[0] if model else "?"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
