#!/usr/bin/env python3
"""What ThreadSanitizer instrumentation (race detection and preemption at shared accesses) costs a
cold check of a chapter: compiling its generated program and running every block, once with the
instrumentation flags the workbook uses and once without, interleaved round by round in one run
(the machines are shared and noisy, so the figures are medians and the result is their ratio).

    scripts/instrumentation-cost.py [--rounds N] [CHAPTER ...]     (after `swift build`)

Defaults to chapter 9 (threads everywhere) and chapter 2 (no threads at all).
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.realpath(os.path.join(ROOT, ".build", "debug"))
WORKBOOK = os.path.join(BIN, "workbook")
INSTRUMENTATION = ["-Xfrontend", "-sanitize=thread", "-gline-tables-only"]


def generated_program(chapter, scratch):
    """The chapter's generated program (with the reference solutions), as the workbook writes it."""
    subprocess.run([WORKBOOK, "check", chapter, "--solutions", "solutions", "--build-dir", scratch, "--no-cache"],
                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    slug = os.path.splitext(os.path.basename(chapter))[0]
    return os.path.join(scratch, "programs", f"{slug}-solutions", "main.swift")


def blocks_of(source):
    """The block numbers in the program's run table."""
    table = source.split("workbookMain([", 1)[1]
    return [int(line.split(":", 1)[0]) for line in table.splitlines() if line.strip().split(":", 1)[0].strip().isdigit()]


def cold_check(source_path, blocks, instrumented, scratch):
    """Seconds to compile the program with a fresh module cache and run each block once."""
    cache = tempfile.mkdtemp(dir=scratch)
    program = os.path.join(scratch, "program-instrumented" if instrumented else "program-plain")
    arguments = ["swiftc", "-module-name", "Bench", "-Onone", "-module-cache-path", cache,
                 "-I", os.path.join(BIN, "Modules"),
                 "-Xcc", f"-fmodule-map-file={BIN}/KernelSimInstrumentation.build/module.modulemap",
                 "-enforce-exclusivity=unchecked", "-L", BIN, "-lKernelSim", "-Xlinker", "-rpath", "-Xlinker", BIN,
                 "-o", program, source_path] + (INSTRUMENTATION if instrumented else [])
    start = time.monotonic()
    subprocess.run(arguments, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for block in blocks:
        subprocess.run([program, "--block", str(block)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, WORKBOOK_RESULT_FILE="/dev/null", SWIFT_BACKTRACE="enable=no"),
                       timeout=120)
    elapsed = time.monotonic() - start
    shutil.rmtree(cache, ignore_errors=True)
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("chapters", nargs="*", default=["chapters/09-races.md", "chapters/02-raising-and-lowering.md"])
    options = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="instrumentation-cost-")
    try:
        for chapter in options.chapters:
            source = generated_program(chapter, os.path.join(scratch, "check"))
            with open(source) as file:
                blocks = blocks_of(file.read())
            times = {True: [], False: []}
            for _ in range(options.rounds):
                for instrumented in (True, False):
                    times[instrumented].append(cold_check(source, blocks, instrumented, scratch))
            with_, without = statistics.median(times[True]), statistics.median(times[False])
            print(json.dumps({"chapter": chapter, "blocks": len(blocks), "rounds": options.rounds,
                              "instrumented_s": round(with_, 3), "plain_s": round(without, 3),
                              "ratio": round(with_ / without, 3)}))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
