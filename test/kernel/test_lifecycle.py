"""Interrupt, restart and bad-cell behaviour of the arrakis-ts kernel through jupyter_client.

An interrupt must stop a long cell, keep the kernel alive, and leave no ablation or hook on the model:
 - soft: the InterruptError is thrown at the cell's next await or tf.js op, so `finally` blocks run;
 - hard: pure JavaScript that does neither is terminated (SIGINT watchdog) after the grace period; its
   `finally` cannot run, so the kernel restores the tools' ablations and resets the model's hooks itself.
"""
import unittest

from kernel_client import result_text, run, run_interrupted, start, stop

# A scalar fingerprint of the model's output: equal before and after means no ablation is left applied.
FINGERPRINT = """
const probeIds = [[1, 2, 3, 4, 5, 6, 7, 8]];
const fingerprint = (): number => tf.tidy(() => (model.forward(probeIds) as tf.Tensor).abs().sum().arraySync() as number);
const clean = fingerprint();
"""


class Lifecycle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start()
        reply, _ = run(cls.kc, FINGERPRINT)
        assert reply["status"] == "ok", reply

    @classmethod
    def tearDownClass(cls):
        stop(cls.km, cls.kc)

    def ok(self, code):
        reply, outputs = run(self.kc, code)
        self.assertEqual(reply["status"], "ok", reply)
        return result_text(outputs)

    def has_attention(self):
        reply, _ = run(self.kc, "attention", store_history=False, silent=True)
        return reply["status"] == "ok"

    def assert_model_clean(self):
        self.assertEqual(self.ok("fingerprint() === clean"), "true", "an ablation or hook is still applied")
        self.assertEqual(self.ok("tf.engine().state.scopeStack.length"), "0")

    def interrupted(self, code, after=1.0):
        reply, outputs, took = run_interrupted(self.km, self.kc, code, after=after)
        self.assertEqual(reply["status"], "error", reply)
        self.assertEqual(reply["ename"], "InterruptError", reply)
        self.assertEqual([m["msg_type"] for m in outputs if m["msg_type"] == "error"], ["error"])
        self.assertLess(took, after + 8, "the interrupt took too long to land")
        return reply

    def test_interrupt_async_loop_runs_finally(self):
        self.ok("let restored = false; let heads = 0;")
        self.interrupted(
            "try { for (let h = 0; h < 1e6; h++) { await new Promise((r) => setImmediate(r)); heads++; fingerprint(); } }"
            " finally { restored = true; }",
            after=1.5,
        )
        self.assertEqual(self.ok("restored && heads > 0"), "true")
        self.assert_model_clean()

    def test_interrupt_synchronous_tfjs_loop_runs_finally(self):
        # No await at all: the interrupt lands at the next tf.js op, as an ordinary exception.
        self.ok("let loopRestored = false;")
        reply = self.interrupted("try { while (true) { fingerprint(); } } finally { loopRestored = true; }")
        self.assertNotIn("synchronous", reply["evalue"])
        self.assertEqual(self.ok("loopRestored"), "true")
        self.assert_model_clean()

    def test_interrupt_pure_javascript_loop(self):
        # Neither awaits nor tf.js: terminated by SIGINT after the grace period.
        reply = self.interrupted("const t0 = Date.now(); while (Date.now() - t0 < 120_000) {}")
        self.assertIn("synchronous", reply["evalue"])
        self.assertEqual(self.ok("1 + 1"), "2")

    def test_interrupt_never_resolving_await(self):
        self.interrupted("await new Promise(() => {})")
        self.assertEqual(self.ok("2 + 2"), "4")

    def test_interrupt_resets_hooks_left_by_terminated_code(self):
        # A hook that no finally removes, then a loop only SIGINT can stop: the kernel resets the hooks.
        self.ok("model.addHook('blocks.0.attn.hook_z', (z: tf.Tensor) => z.mul(0));")
        self.assertEqual(self.ok("fingerprint() === clean"), "false")
        self.interrupted("while (true) {}")
        self.assert_model_clean()

    def test_interrupt_head_sweep_leaves_no_ablation(self):
        if not self.has_attention():
            self.skipTest("AttentionTools is not exported by the library yet")
        # an ablation per head with awaits between heads, restored by the tools' own finally
        self.interrupted(
            "for (let i = 0; ; i++) { await attention.withAblatedHead(0, i % model.cfg.nHeads, async () => {"
            " await new Promise((r) => setTimeout(r, 5)); fingerprint(); }); }",
            after=1.5,
        )
        self.assert_model_clean()
        # an ablation left on (no finally) in a synchronous tf.js loop: the kernel's restoreAll() undoes it
        self.interrupted("attention.ablateHead(0, 0); while (true) { fingerprint(); }")
        self.assert_model_clean()
        # a head merge left on while pure JavaScript spins (hard stop): weights are swapped back
        self.interrupted('attention.mergeHeads(0, 0, 1, 0.5, { mode: "weights" }); while (true) {}')
        self.assert_model_clean()

    def test_bad_cells_leave_kernel_working(self):
        reply, outputs = run(self.kc, 'const badType: number = "text";')
        self.assertEqual((reply["status"], reply["ename"]), ("error", "TSError"))
        self.assertIn("not assignable", reply["evalue"])
        self.assertEqual([m["msg_type"] for m in outputs], ["error"])
        reply, _ = run(self.kc, 'throw new RangeError("thrown on purpose")')
        self.assertEqual((reply["ename"], reply["evalue"]), ("RangeError", "thrown on purpose"))
        if self.has_attention():
            reply, _ = run(self.kc, "attention.attentionPatterns(probeIds, 0, 99)")
            self.assertEqual(reply["status"], "error")
            self.assertIn("99", reply["evalue"])
        # Errors thrown later from callbacks are reported, not fatal (tfjs-backend-wasm's glue removes
        # process listeners; the kernel re-installs its own).
        reply, outputs = run(self.kc, 'setTimeout(() => { throw new Error("from a timer"); }, 0);'
                             ' Promise.reject(new Error("never handled")); await new Promise((r) => setTimeout(r, 100));')
        self.assertEqual(reply["status"], "ok")
        stderr = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
        self.assertIn("from a timer", stderr)
        self.assertIn("never handled", stderr)
        before = run(self.kc, "1")[0]["execution_count"]
        reply, outputs = run(self.kc, "6 * 7")
        self.assertEqual(reply["execution_count"], before + 1)
        self.assertEqual(result_text(outputs), "42")
        self.assert_model_clean()

    def test_error_aborts_only_requests_sent_before_it(self):
        # Stock tslab aborted every request arriving within 200 ms after an error.
        reply, _ = run(self.kc, 'throw new Error("first")')
        self.assertEqual(reply["status"], "error")
        self.assertEqual(self.ok("40 + 2"), "42")
        # Queued before the error is known: aborted (Run All stops at the failing cell).
        statuses = {}

        def collect(ids):
            for _ in ids:
                msg = self.kc.get_shell_msg(timeout=30)
                statuses[msg["parent_header"]["msg_id"]] = msg["content"]["status"]
            return [statuses[i] for i in ids]

        ids = [self.kc.execute('throw new Error("x")'), self.kc.execute("1"), self.kc.execute("2")]
        self.assertEqual(collect(ids), ["error", "aborted", "aborted"])
        # stop_on_error=False: the next request runs.
        ids = [self.kc.execute('throw new Error("y")', stop_on_error=False), self.kc.execute("3")]
        self.assertEqual(collect(ids), ["error", "ok"])

    def test_failed_cell_keeps_its_declarations(self):
        # As in IPython, what a failing cell assigned before the exception stays usable.
        reply, _ = run(self.kc, 'const keptText = "kept"; throw new Error("after the assignment");')
        self.assertEqual(reply["status"], "error")
        self.assertEqual(self.ok("keptText.length"), "4")
        self.ok('const keptText = "redeclared";')  # running the fixed cell again is allowed
        self.assertEqual(self.ok("keptText.length"), "10")

    def test_top_level_for_await(self):
        # Stock tslab ran this in a plain function: "SyntaxError: Unexpected reserved word".
        reply, outputs = run(self.kc, "let total = 0; for await (const x of [1, 2, 3]) { total += x; } total")
        self.assertEqual(reply["status"], "ok", reply)
        self.assertEqual(result_text(outputs), "6")

    def test_z_restart(self):
        self.ok("const beforeRestart = 1;")
        self.km.restart_kernel(now=False)
        self.kc.wait_for_ready(timeout=120)
        reply, _ = run(self.kc, "beforeRestart")
        self.assertEqual(reply["status"], "error", "state survived the restart")
        self.assertEqual(self.ok("typeof model.forward === 'function'"), "true")
        reply, _ = run(self.kc, FINGERPRINT)
        self.assertEqual(reply["status"], "ok")


if __name__ == "__main__":
    unittest.main(verbosity=2)
