#!/usr/bin/env python3
"""Runs a Python unittest module and reports each case as a TAP line.

Usage: tap.py path/to/test_x.py
Skipped cases print '# SKIP reason'; the reason is required by the project's rules.
"""
import importlib.util
import os
import sys
import unittest


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.sub_failures = {}  # test id -> diagnostics of its failed subTests

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            # unittest reports neither success nor failure for a test whose subTests
            # failed: say it when the test stops (stopTest), one TAP line per test.
            self.sub_failures.setdefault(test.id(), []).append(
                f"{subtest.id().split('.', 1)[-1]}\n" + self._exc_info_to_string(err, test))

    def stopTest(self, test):
        failed = self.sub_failures.pop(test.id(), None)
        if failed:
            if getattr(self, "printed", None) != test.id():
                self._line(False, test)
            print("# " + "\n".join(failed).replace("\n", "\n# "), flush=True)
        super().stopTest(test)

    def _line(self, ok, test, extra=""):
        self.printed = test.id()
        self.n += 1
        name = test.id().split(".", 1)[-1]
        print(f"{'ok' if ok else 'not ok'} {self.n} - {name}{extra}", flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test)
        print("# " + self._exc_info_to_string(err, test).replace("\n", "\n# "), flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        self._line(False, test)
        print("# " + self._exc_info_to_string(err, test).replace("\n", "\n# "), flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(True, test, f" # SKIP {reason}")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._line(True, test, " # TODO expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._line(False, test, " (unexpected success)")


def main():
    path = sys.argv[1]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location(
        os.path.splitext(os.path.basename(path))[0], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
    print(f"1..{suite.countTestCases()}", flush=True)
    result = TapResult()
    suite.run(result)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
