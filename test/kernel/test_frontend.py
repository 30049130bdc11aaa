"""What notebook frontends ask the arrakis-ts kernel besides running cells, through jupyter_client.

 - Shift+Tab (inspect_request) inside a call's parentheses answers with the called function's signature and
   doc, as ipykernel does; on a name it answers with that name;
 - the editor mode in kernel_info is one that JupyterLab 3, JupyterLab 4 and classic Notebook all resolve
   to TypeScript;
 - completion asked right after the kernel starts (the prelude still loading) waits for the prelude and
   then answers with the preloaded objects' members;
 - the "library gone" note's advice `display.resetPlotlyLibrary()` works, and the function is exported from
   the package root.
"""
import unittest

from kernel_client import STARTUP_TIMEOUT, result_text, run, start, stop

SIGNATURE = "AttentionTools.attentionPatterns(input: ModelInput, layer: number, head: number)"
DOC = "The post-softmax pattern of `layer`"
# The marker that the Plotly library is inlined in a Plotly output (src/display/plotly.ts).
LIBRARY_MARK = "Plotly library ("


def request(kc, method, timeout=30, **kw):
    msg_id = getattr(kc, method)(**kw)
    while True:  # skip replies to earlier requests (wait_for_ready's kernel_info)
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


class FirstSeconds(unittest.TestCase):
    """A fresh kernel of its own: completion sent as soon as kernel_info answers, before the prelude is done."""

    def test_completion_waits_for_the_prelude(self):
        km, kc = start()
        try:
            code = "attention.att"
            reply = request(kc, "complete", timeout=STARTUP_TIMEOUT, code=code, cursor_pos=len(code))
            self.assertEqual(reply["status"], "ok", reply)
            self.assertIn("attentionPatterns", reply["matches"], reply)
            self.assertEqual((reply["cursor_start"], reply["cursor_end"]), (len("attention."), len(code)))
        finally:
            stop(km, kc)


class Frontend(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start()

    @classmethod
    def tearDownClass(cls):
        stop(cls.km, cls.kc)

    def inspect(self, code, cursor_pos=None):
        reply = request(self.kc, "inspect", code=code, cursor_pos=len(code) if cursor_pos is None else cursor_pos)
        self.assertEqual(reply["status"], "ok", reply)
        return reply

    def assert_signature(self, reply, code):
        self.assertTrue(reply["found"], f"nothing found for {code!r}")
        text = reply["data"]["text/plain"]
        self.assertIn(SIGNATURE, text)
        self.assertIn(DOC, text)

    def test_inspect_right_after_open_paren(self):
        code = "attention.attentionPatterns("
        self.assert_signature(self.inspect(code), code)

    def test_inspect_inside_the_arguments(self):
        for code in ["attention.attentionPatterns(text, 1, ", "attention.attentionPatterns(text, ", 'attention.attentionPatterns("a b c", 1, 0)']:
            cursor = len(code) - 1 if code.endswith(")") else len(code)  # before the closing parenthesis
            self.assert_signature(self.inspect(code, cursor), code)

    def test_inspect_innermost_call_and_code_after_it(self):
        code = "Math.max(1, attention.attentionPatterns(text, 1, 0).values.length)\nconst later = 2;"
        inner = code.index("text, 1")
        self.assert_signature(self.inspect(code, inner), code)
        outer = self.inspect(code, code.index("1, attention"))
        self.assertTrue(outer["found"])
        self.assertIn("max(", outer["data"]["text/plain"])

    def test_inspect_counts_code_points(self):
        # Jupyter's cursor_pos counts code points; the emoji is two UTF-16 units.
        code = 'const s = "\U0001F600"; attention.attentionPatterns('
        self.assert_signature(self.inspect(code), code)

    def test_inspect_on_a_name_and_outside_calls(self):
        code = "attention.attentionPatterns"
        self.assert_signature(self.inspect(code), code)
        reply = self.inspect("model")
        self.assertTrue(reply["found"])
        self.assertIn("HookedAutoModel", reply["data"]["text/plain"])
        # After a closed call the cursor is outside it: nothing there to inspect.
        self.assertFalse(self.inspect("attention.attentionPatterns(text, 1)  ")["found"])

    def test_codemirror_mode_is_typescript_for_every_frontend(self):
        reply = request(self.kc, "kernel_info")
        mode = reply["language_info"]["codemirror_mode"]
        # JupyterLab 4 resolves `name`, then `mime`; JupyterLab 3 and classic Notebook resolve `mode` first, then
        # `name` as a CodeMirror 5 mode name or MIME type (a `mode` naming no CodeMirror 5 mode file breaks them).
        self.assertEqual(mode.get("mime"), "application/typescript")
        self.assertEqual(mode.get("name"), "application/typescript")
        self.assertNotIn("mode", mode)

    def test_reset_plotly_library_as_the_note_says(self):
        draw = 'attention.attentionPatterns("a b a b", 0, 0)'

        def html():
            reply, outputs = run(self.kc, draw)
            self.assertEqual(reply["status"], "ok", reply)
            return next(m["content"]["data"]["text/html"] for m in outputs if m["msg_type"] == "execute_result")

        html()  # the first Plotly output of this kernel carries the library
        self.assertNotIn(LIBRARY_MARK, html())
        reply, outputs = run(self.kc, "display.resetPlotlyLibrary()")
        self.assertEqual(reply["status"], "ok", reply)
        self.assertIn(LIBRARY_MARK, html())
        reply, outputs = run(self.kc, 'import { resetPlotlyLibrary } from "arrakis-ts";\nresetPlotlyLibrary();\n"reset"')
        self.assertEqual((reply["status"], result_text(outputs)), ("ok", "reset"), reply)
        self.assertIn(LIBRARY_MARK, html())


if __name__ == "__main__":
    unittest.main(verbosity=2)
