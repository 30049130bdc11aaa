"""Reliability of the arrakis-ts kernel through jupyter_client: no lost output, aborts by arrival order
(never by the client's clock), replayed messages rejected, process.exit refused, background errors shown.
"""
import os
import queue
import tempfile
import time
import unittest
from datetime import datetime, timedelta, timezone

import jupyter_client.session as jc_session
from jupyter_client.manager import KernelManager

from kernel_client import KERNEL, KERNEL_CWD, STARTUP_TIMEOUT, result_text, run


def collect_until_idle(kc, msg_id, timeout=120):
    """IOPub messages parented to `msg_id` up to and including its idle status (raises if idle never comes)."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no idle status for {msg_id}; got {[m['msg_type'] for m in got][-10:]}")
        m = kc.get_iopub_msg(timeout=left)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        got.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return got


class Reliability(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.log = tempfile.NamedTemporaryFile(prefix="arrakis-kernel-log-", suffix=".txt", delete=False)
        try:
            cls.km = KernelManager(kernel_name=KERNEL)
            cls.km.start_kernel(cwd=KERNEL_CWD, stderr=cls.log)
            cls.kc = cls.km.client()
            cls.kc.start_channels()
            cls.kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
        except BaseException:
            # tearDownClass does not run when setup fails: leave no log file behind.
            cls.log.close()
            os.unlink(cls.log.name)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel(now=False)
        cls.log.close()
        os.unlink(cls.log.name)

    def ok(self, code):
        reply, outputs = run(self.kc, code)
        self.assertEqual(reply["status"], "ok", reply)
        return result_text(outputs)

    def kernel_log(self):
        with open(self.log.name, encoding="utf8", errors="replace") as f:
            return f.read()

    def test_a_normal_start_logs_one_line(self):
        self.ok("1")  # the prelude has finished
        lines = [l for l in self.kernel_log().splitlines() if l.startswith("[arrakis-ts ")]
        info = [l for l in lines if " info] " in l]
        self.assertEqual(len(info), 1, lines)
        self.assertRegex(info[0], r"ready in [\d.]+ s: engine: (ort|tfjs) .*; tf.js backend: \w+.*; model: .+; preloaded tf, display, model")
        self.assertEqual([l for l in lines if " debug] " in l], [], "debug lines at the default level")
        self.assertNotIn("re-installed", self.kernel_log())

    def test_preloaded_objects_complete_with_the_library_types(self):
        self.ok("1")  # after the prelude: the preloaded names are declared
        for text, want in [("model.forw", "forward"), ("attention.attentionPatt", "attentionPatterns"), ("exp.logExper", "logExperiment")]:
            msg_id = self.kc.complete(text, len(text))
            reply = self.kc.get_shell_msg(timeout=60)
            self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
            self.assertIn(want, reply["content"]["matches"], text)

    def test_burst_of_100000_lines_arrives_in_order_then_idle(self):
        n = 100_000
        msg_id = self.kc.execute(f"for (let i = 0; i < {n}; i++) console.log('line ' + i)")
        msgs = collect_until_idle(self.kc, msg_id)
        text = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
        self.assertEqual(text.splitlines(), [f"line {i}" for i in range(n)])
        self.assertEqual(msgs[-1]["msg_type"], "status")
        self.assertEqual(self.kc.get_shell_msg(timeout=30)["content"]["status"], "ok")

    def test_stdout_and_stderr_interleaved_keep_their_order(self):
        n = 500
        msg_id = self.kc.execute(f"for (let i = 0; i < {n}; i++) {{ console.log('o' + i); console.error('e' + i); }}")
        msgs = collect_until_idle(self.kc, msg_id)
        got = [(m["content"]["name"], m["content"]["text"]) for m in msgs if m["msg_type"] == "stream"]
        want = [pair for i in range(n) for pair in (("stdout", f"o{i}\n"), ("stderr", f"e{i}\n"))]
        self.assertEqual(got, want)
        self.kc.get_shell_msg(timeout=30)

    def collect_replies(self, ids):
        statuses = {}
        for _ in ids:
            msg = self.kc.get_shell_msg(timeout=60)
            statuses[msg["parent_header"]["msg_id"]] = msg["content"]["status"]
        return [statuses[i] for i in ids]

    def with_client_clock(self, now):
        """Runs the abort scenario with the client's header dates produced by `now()`."""
        original = jc_session.utcnow
        jc_session.utcnow = now
        try:
            reply, _ = run(self.kc, 'throw new Error("first")')
            self.assertEqual(reply["status"], "error")
            # Sent after the error reply arrived: must run whatever its date says.
            self.assertEqual(self.ok("40 + 2"), "42")
            # Queued before the error was known: aborted.
            ids = [self.kc.execute('throw new Error("x")'), self.kc.execute("1"), self.kc.execute("2")]
            self.assertEqual(self.collect_replies(ids), ["error", "aborted", "aborted"])
            self.assertEqual(self.ok("6 * 7"), "42")
        finally:
            jc_session.utcnow = original

    def test_abort_by_arrival_with_client_clock_30s_behind_without_timezone(self):
        # A naive ISO date (no "Z", no offset) 30 s behind the kernel's clock.
        self.with_client_clock(lambda: (datetime.now(timezone.utc) - timedelta(seconds=30)).replace(tzinfo=None).isoformat())

    def test_abort_by_arrival_with_client_clock_in_another_zone_and_ahead(self):
        # Local time of UTC+5 written without its offset: read as UTC, it is five hours ahead.
        self.with_client_clock(lambda: (datetime.now(timezone.utc) + timedelta(hours=5, seconds=30)).replace(tzinfo=None).isoformat())

    def test_replayed_signed_message_is_rejected(self):
        self.ok("let replays = 0;")
        msg = self.kc.session.msg("execute_request", {"code": "replays++", "silent": False, "store_history": True,
                                                      "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        self.kc.session.send(self.kc.shell_channel.socket, msg)
        self.kc.session.send(self.kc.shell_channel.socket, msg)  # the same signed frames again
        self.assertEqual(self.kc.get_shell_msg(timeout=30)["parent_header"]["msg_id"], msg["header"]["msg_id"])
        self.assertEqual(self.ok("replays"), "1")
        self.assertIn("duplicate signature", self.kernel_log())

    def test_unsigned_message_is_dropped_with_one_log_line(self):
        key = self.kc.session.key
        self.kc.session.key = b""  # sends with an empty signature
        try:
            self.kc.execute("globalThis.unsignedRan = true")
        finally:
            self.kc.session.key = key
        self.assertEqual(self.ok("typeof (globalThis as any).unsignedRan"), "undefined")
        log = self.kernel_log().splitlines()
        at = [i for i, l in enumerate(log) if "dropped a message" in l and "invalid message signature" in l]
        self.assertEqual(len(at), 1, log[-20:])
        following = log[at[0] + 1] if at[0] + 1 < len(log) else ""
        self.assertFalse(following.lstrip().startswith("at "), f"a stack trace follows: {following}")

    def test_process_exit_is_refused(self):
        reply, outputs = run(self.kc, "process.exit(3)")
        self.assertEqual(reply["status"], "error")
        self.assertIn("process.exit", reply["evalue"])
        self.assertIn("restart", reply["evalue"].lower())
        self.assertEqual(self.ok("1 + 1"), "2", "the kernel must still be alive")

    def test_background_errors_reach_the_next_cell(self):
        self.ok('setTimeout(() => { throw new Error("late timer"); }, 300);'
                ' setTimeout(() => { Promise.reject(new Error("late rejection")); }, 300);')
        time.sleep(1.5)  # both fire while no cell runs
        reply, outputs = run(self.kc, "2 + 2")
        self.assertEqual(reply["status"], "ok")
        stderr = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
        self.assertIn("late timer", stderr)
        self.assertIn("late rejection", stderr)
        self.assertEqual(result_text(outputs), "4")
        # Reported once: the cell after does not repeat them.
        _, outputs = run(self.kc, "3")
        self.assertEqual([m["msg_type"] for m in outputs], ["execute_result"])

    def test_z_callback_looping_after_its_cell_is_recovered_by_restart(self):
        # Documented limit: nothing can stop synchronous code that runs outside a cell. The heartbeat (its
        # own thread) keeps answering, and a restart replaces the process.
        self.ok("setTimeout(() => { while (true) {} }, 100);")
        time.sleep(1)
        self.assertTrue(self.kc.hb_channel.is_beating())
        self.km.restart_kernel(now=False)
        self.kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
        self.assertEqual(self.ok("6 * 7"), "42")


if __name__ == "__main__":
    unittest.main(verbosity=2)
