"""The host: flags, user scripts, errors, the REPL, script overrides, a copied binary."""
import os
import shutil
import signal
import subprocess
import time
import unittest

from helpers import HFSCAN, SOURCE_DIR, TempDirCase, run

ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


READY = 'do io.stderr:write("ready\\n") end '


def repl_with_ctrl_c(before, after):
    """A piped REPL given `before` (after a line that says it is ready), then
    Ctrl-C while it works on it, then `after`. Returns the exit status, stdout
    and stderr."""
    proc = subprocess.Popen([HFSCAN, "repl"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdin.write(before)
    proc.stdin.flush()
    assert proc.stderr.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(after, timeout=30)
    return proc.returncode, out, err


class HostTest(TempDirCase):
    def test_help_and_version(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: hfscan", r.stdout)
        r = run(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^hfscan \d+\.\d+\.\d+\n$")

    def test_unknown_flag_is_a_usage_error(self):
        r = run(["--frobnicate"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown option '--frobnicate'", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_script_gets_args_like_lua(self):
        script = self.write("s.lua", 'local a, b = ...\nprint(a, b, arg[0], arg[1], arg[2], #arg)\n'
                            'print(require("hfscan").sha256("abc"))\n'
                            'print(type(require("hfscan.cli").usage_error))\n')
        r = run(["--script", script, "one", "two words"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(),
                         [f"one\ttwo words\t{script}\tone\ttwo words\t2", ABC, "function"])

    def test_script_error_names_file_and_line_and_exits_1(self):
        script = self.write("bad.lua", "local x = 1\nlocal y = nil\nreturn y.field\n")
        r = run(["--script", script])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{script}:3: attempt to index a nil value", r.stderr)
        self.assertIn("stack traceback", r.stderr)

    def test_script_syntax_error(self):
        script = self.write("syntax.lua", "local = 3\n")
        r = run(["--script", script])
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{script}:1:", r.stderr)

    def test_script_return_value_is_exit_status(self):
        script = self.write("exit.lua", "return 7\n")
        self.assertEqual(run(["--script", script]).returncode, 7)

    def test_missing_script(self):
        r = run(["--script", self.path("nope.lua")])
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot open", r.stderr)

    def test_repl_from_a_pipe(self):
        r = run(["repl"], stdin='print(hf.sha256("abc"))\nhf.sha256("")\nt = {\n1,\n2}\nprint(#t)\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), [
            ABC, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "2"])
        r = run(["-i"], stdin='error("oops")\nprint("still here")\n')
        self.assertEqual(r.returncode, 1)
        self.assertIn("oops", r.stderr)
        self.assertIn("still here", r.stdout)

    def test_repl_help_and_usage(self):
        r = run(["repl", "extra"], stdin="print(1)\n")
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (2, "", "hfscan: repl: unexpected argument 'extra'\n"
                                 "Try 'hfscan repl --help' for more information.\n"))
        r = run(["repl", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith(
            "usage: hfscan repl [--endpoint URL] [--token TOKEN | --no-token]\n"), r.stdout)

    def test_ctrl_c_at_a_piped_prompt_asks_again(self):
        proc = subprocess.Popen([HFSCAN, "repl"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        proc.stdin.write('do io.stderr:write("ready\\n") end\n')
        proc.stdin.flush()
        self.assertEqual(proc.stderr.readline(), "ready\n")
        time.sleep(0.3)  # now blocked reading the next line
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        out, err = proc.communicate('print(hf.sha256("abc"))\n', timeout=30)
        self.assertEqual((proc.returncode, out, err), (0, ABC + "\n", ""))

    def test_ctrl_c_stops_a_busy_script_and_a_busy_repl_line(self):
        for body in ("while true do end",
                     "coroutine.wrap(function() while true do end end)()",
                     "local ok = pcall(function() while true do end end)\n"
                     "io.stderr:write('cleaned up\\n') for i = 1, 1e7 do end"):
            # Ready once the script runs: the host's handler is in place by then.
            script = self.write("spin.lua", READY + body + "\n")
            proc = subprocess.Popen([HFSCAN, "--script", script], stderr=subprocess.PIPE, text=True)
            self.assertEqual(proc.stderr.readline(), "ready\n")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
            self.assertEqual(proc.returncode, 130, body)
            if "pcall" in body:  # raised once: the cleanup after pcall runs to its end
                self.assertEqual(err, "cleaned up\n")
            else:
                self.assertIn("interrupted", err, body)

        # Ctrl-C at the continuation prompt drops nothing but that wait (and if it
        # comes before the prompt reads the line, there is nothing to drop yet).
        returncode, out, err = repl_with_ctrl_c(READY + "\nx = {\n", "1 }\nprint(x[1])\n")
        self.assertEqual((returncode, out, err), (0, "1\n", ""))

        returncode, out, err = repl_with_ctrl_c(READY + "while true do end\n", 'print("after")\n')
        self.assertEqual((returncode, out), (1, "after\n"), err)
        self.assertIn("interrupted", err)

    def test_scripts_dir_overrides_a_bundled_module(self):
        self.write("override/hfscan/commands/hash.lua",
                   'return { run = function(args) io.stderr:write("OVERRIDDEN ", args[1], "\\n") '
                   'return 5 end }\n')
        r = run(["--scripts-dir", self.path("override"), "hash", "x"])
        self.assertEqual((r.returncode, r.stderr), (5, "OVERRIDDEN x\n"))
        r = run(["hash", "y"], env={"HFSCAN_SCRIPTS_DIR": self.path("override")})
        self.assertEqual((r.returncode, r.stderr), (5, "OVERRIDDEN y\n"))
        # A folder's init.lua is the folder's module, as on Lua's own path.
        self.write("folder/hfscan/commands/lookup/init.lua",
                   'return { run = function() io.stderr:write("FOLDER\\n") return 6 end }\n')
        r = run(["--scripts-dir", self.path("folder"), "lookup", "x"])
        self.assertEqual((r.returncode, r.stderr), (6, "FOLDER\n"))
        r = run(["--script", self.write("same.lua", 'return require("hfscan.hub") == '
                                        'require("hfscan.hub.api") and 0 or 1\n')])
        self.assertEqual(r.returncode, 0, "the bundled hub/init.lua is hfscan.hub")
        # Without the override the bundled module is back.
        r = run(["hash", "/nonexistent-file"])
        self.assertEqual((r.returncode, r.stderr),
                         (1, "hfscan hash: /nonexistent-file: No such file or directory\n"))

    def test_copied_binary_runs_from_anywhere(self):
        copy = self.path("elsewhere", "hfscan")
        os.makedirs(os.path.dirname(copy))
        shutil.copy(HFSCAN, copy)
        r = run(["--help"], cwd="/", binary=copy)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["hash", "-"], stdin="abc", cwd="/", binary=copy)
        self.assertEqual(r.stdout, f"{ABC}  -\n")

    def test_traceback_names_bundled_files(self):
        script = self.write("tb.lua", 'require("hfscan.commands.hash").run({{}})\n')
        r = run(["--script", script])
        self.assertEqual(r.returncode, 1)
        self.assertIn("lua/hfscan/commands/hash.lua:", r.stderr)


@unittest.skipIf(os.environ.get("HFSCAN_SANITIZED") == "1",
                 "a sanitized module cannot be loaded by an uninstrumented lua5.4")
class InstalledModuleTest(TempDirCase):
    """cmake --install puts the module where stock lua5.4 finds it."""

    def test_install_layout(self):
        build = os.environ.get("HFSCAN_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
        prefix = self.path("prefix")
        subprocess.run(["cmake", "--install", build, "--prefix", prefix], check=True,
                       capture_output=True)
        self.assertTrue(os.path.exists(os.path.join(prefix, "lib/lua/5.4/hfscan.so")))
        self.assertTrue(os.path.exists(os.path.join(prefix, "share/lua/5.4/hfscan/main.lua")))
        self.assertTrue(os.path.exists(os.path.join(prefix, "bin/hfscan")))
        env = dict(os.environ, LUA_CPATH=f"{prefix}/lib/lua/5.4/?.so;;",
                   LUA_PATH=f"{prefix}/share/lua/5.4/?.lua;{prefix}/share/lua/5.4/?/init.lua;;")
        r = subprocess.run(["lua5.4", "-e", 'local hf = require "hfscan"; print(hf.sha256("abc"))'],
                           env=env, capture_output=True, text=True)
        self.assertEqual(r.stdout, ABC + "\n", r.stderr)
        r = subprocess.run(["lua5.4", "-e", 'print(type(require("hfscan.cli").usage_error))'],
                           env=env, capture_output=True, text=True)
        self.assertEqual(r.stdout, "function\n", r.stderr)
