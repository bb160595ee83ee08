#!/usr/bin/env python3
"""The workbook's committed benchmark.

Times `workbook check` on a generated 40-block chapter against rustdoc's doctests on the equivalent
Rust chapter (`rustdoc --test --edition 2024`, merged doctests), side by side in one run, and against
compiling each block separately. The machines are shared and noisy, so the variants are interleaved
round by round and the figures are medians, reported as ratios to rustdoc measured in the same run.

    scripts/benchmark.py [--rounds N] [--blocks N]      (after `swift build`)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKBOOK = os.path.join(ROOT, ".build", "debug", "workbook")


def swift_block(i, salt):
    return f"""```swift
// block {i} ({salt})
func steps{i}() -> Int {{ {i % 5 + 3} }}
var counter{i} = 0
var mutex = FAST_MUTEX()
ExInitializeFastMutex(&mutex)
for step in 0..<steps{i}() {{
    ExAcquireFastMutex(&mutex)
    expectEqual(KeGetCurrentIrql(), APC_LEVEL)
    counter{i} += step
    ExReleaseFastMutex(&mutex)
}}
var lock: KSPIN_LOCK = 0
var old: KIRQL = 0
KeAcquireSpinLock(&lock, &old)
expect(KeGetCurrentIrql() == DISPATCH_LEVEL)
KeReleaseSpinLock(&lock, old)
expectEqual(counter{i}, {sum(range(i % 5 + 3))})
```
"""


def rust_block(i, salt):
    return f"""```rust
// block {i} ({salt})
use std::sync::Mutex;
fn steps{i}() -> u32 {{ {i % 5 + 3} }}
let mut counter{i} = 0;
let mutex = Mutex::new(0u32);
for step in 0..steps{i}() {{
    let mut guard = mutex.lock().unwrap();
    *guard += 1;
    assert!(*guard > 0);
    counter{i} += step;
    drop(guard);
}}
let lock = Mutex::new(());
let held = lock.lock().unwrap();
assert!(lock.try_lock().is_err());
drop(held);
assert_eq!(counter{i}, {sum(range(i % 5 + 3))});
```
"""


def write_chapter(path, blocks, make_block, salts):
    with open(path, "w") as f:
        f.write("# Benchmark chapter\n\n")
        for i in range(blocks):
            f.write(f"Block {i}.\n\n{make_block(i, salts[i])}\n")


def timed(command, cwd, expect_ok=True):
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - start
    if expect_ok and result.returncode != 0:
        sys.exit(f"benchmark: {' '.join(command)} failed:\n{result.stdout[-3000:]}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=40)
    args = parser.parse_args()
    if not os.access(WORKBOOK, os.X_OK):
        sys.exit("benchmark: build first (swift build)")
    rustdoc = shutil.which("rustdoc")
    work = tempfile.mkdtemp(prefix="workbook-bench-")
    swift_md = os.path.join(work, "chapter.md")
    rust_md = os.path.join(work, "chapter-rust.md")
    singles = os.path.join(work, "singles")
    os.makedirs(singles)
    build = os.path.join(work, "build")
    check = [WORKBOOK, "check", swift_md, "--build-dir", build]

    # Warm-up: the compiler's module cache, the page cache for the toolchain.
    write_chapter(swift_md, args.blocks, swift_block, ["warm-up"] * args.blocks)
    timed(check, work)
    times = {k: [] for k in ["rustdoc", "cold", "warm", "one-edit", "per-block"]}
    for round_ in range(args.rounds):
        if rustdoc:
            write_chapter(rust_md, args.blocks, rust_block, [f"r{round_}"] * args.blocks)
            times["rustdoc"].append(timed([rustdoc, "--test", "--edition", "2024", rust_md], work))
        # Every block changed: new code in each block, so no cached result applies.
        salts = [f"round {round_}"] * args.blocks
        write_chapter(swift_md, args.blocks, swift_block, salts)
        times["cold"].append(timed(check, work))
        # Unchanged: every result comes from the cache.
        times["warm"].append(timed(check, work))
        # One block edited: the chapter recompiles, only that block runs again.
        salts[args.blocks // 2] = f"round {round_} edited"
        write_chapter(swift_md, args.blocks, swift_block, salts)
        times["one-edit"].append(timed(check, work))
        # Each block compiled on its own: one chapter file per block, no cache.
        for name in os.listdir(singles):
            os.remove(os.path.join(singles, name))
        for i in range(args.blocks):
            write_chapter(os.path.join(singles, f"{i:02}.md"), 1, lambda _, s: swift_block(i, s), [f"s{round_}"])
        times["per-block"].append(timed([WORKBOOK, "check", singles, "--build-dir", build, "--no-cache"], work))

    # The course itself: cold (no cached result), warm, and each block compiled on its own.
    course = os.path.join(work, "course-build")
    course_check = [WORKBOOK, "check", os.path.join(ROOT, "chapters"), "--solutions", os.path.join(ROOT, "solutions"),
                    "--build-dir", course]
    timed(course_check + ["--no-cache"], work)  # warms this build folder's module cache
    course_times = {k: [] for k in ["course cold", "course warm", "course per-block"]}
    for _ in range(args.rounds):
        course_times["course cold"].append(timed(course_check + ["--no-cache"], work))
        course_times["course warm"].append(timed(course_check, work))
        course_times["course per-block"].append(timed(course_check + ["--no-cache", "--no-batch"], work))

    medians = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"{args.blocks}-block chapter, median of {args.rounds} interleaved rounds (seconds):")
    base = medians.get("rustdoc")
    labels = {
        "rustdoc": "rustdoc --test --edition 2024 (merged doctests)",
        "cold": "workbook check, every block changed",
        "warm": "workbook check, unchanged (cache hit)",
        "one-edit": "workbook check, one block edited",
        "per-block": "workbook check, each block compiled separately",
    }
    targets = {"cold": 2.0, "warm": 0.5, "one-edit": 1.5}
    for key, label in labels.items():
        if key not in medians:
            continue
        line = f"  {label:<50} {medians[key]:7.2f}"
        if base and key != "rustdoc":
            ratio = medians[key] / base
            line += f"   {ratio:5.2f}x rustdoc"
            if key in targets:
                line += f"  (target <= {targets[key]}x: {'met' if ratio <= targets[key] else 'NOT met'})"
        print(line)
    if "cold" in medians and "per-block" in medians:
        print(f"  batching speed-up over per-block compiles: {medians['per-block'] / medians['cold']:.1f}x")
    if not rustdoc:
        print("  (rustdoc not found: no baseline)")
    course_medians = {k: statistics.median(v) for k, v in course_times.items()}
    blocks = sum(open(os.path.join(ROOT, "chapters", f)).read().count("```swift") for f in os.listdir(os.path.join(ROOT, "chapters")))
    print(f"The course ({blocks} swift blocks, solutions substituted), median of {args.rounds} rounds (seconds):")
    cold = course_medians["course cold"]
    for key in ["course cold", "course warm", "course per-block"]:
        print(f"  {key:<50} {course_medians[key]:7.2f}   {course_medians[key] / cold:5.2f}x cold")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
