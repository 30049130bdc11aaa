"""Jupyter's own conformance suite (jupyter_kernel_test) against the installed arrakis-ts kernel.

Run by test/kernel.test.ts with JUPYTER_PATH pointing at a temporary kernelspec install. Every sample
below exercises a protocol defect stock tslab had: kernel_info status, errors as
`error` messages, execute_result instead of stdout, history, is_complete "invalid", execute_input.
"""
import unittest

import jupyter_kernel_test as jkt
from kernel_client import KERNEL, STARTUP_TIMEOUT, run, start


class ArrakisKernelTests(jkt.KernelTests):
    kernel_name = KERNEL
    language_name = "typescript"
    file_extension = ".ts"

    @classmethod
    def setUpClass(cls):
        # As jkt.KernelTests does, but started in the driver's folder outside the project.
        cls.km, cls.kc = start()
        # kernel_info is answered at once, but the first cell waits for the prelude (backend and model),
        # which can exceed the suite's 15 s per-request timeout on a loaded machine: wait for it here.
        reply, _ = run(cls.kc, "1", timeout=STARTUP_TIMEOUT, store_history=False)
        assert reply["status"] == "ok", reply

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("to stderr")'

    completion_samples = [
        {"text": "display.htm", "matches": {"html"}},
        {"text": "const arrakisLongName = 1; arrakisLong", "matches": {"arrakisLongName"}},
    ]

    complete_code_samples = ["1", "const x = 1;", "display(1)", "for (const i of [1, 2]) { console.log(i); }"]
    incomplete_code_samples = ["function f() {", "const a = [1,", "if (true) {\n  console.log(1);"]
    invalid_code_samples = ["}", "let 1x = 2;", "const = 5;"]

    code_generate_error = 'throw new Error("boom")'

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "[1, 2, 3].map((x) => x * 2)", "result": "[ 2, 4, 6 ]"},
        {"code": "({ toMimeBundle: () => ({ 'text/plain': 'rich', 'text/html': '<b>rich</b>' }) })", "mime": "text/html", "result": "<b>rich</b>"},
    ]

    code_display_data = [
        {"code": "display.html('<b>hi</b>')", "mime": "text/html"},
        {"code": "display({ toMimeBundle: () => ({ 'image/svg+xml': '<svg/>', 'text/plain': 'svg' }) })", "mime": "image/svg+xml"},
    ]

    code_history_pattern = "6 ? 7"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "display"

    code_clear_output = "display.clear()"


if __name__ == "__main__":
    unittest.main(verbosity=2)
