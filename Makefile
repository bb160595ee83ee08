# The IRQL Workbook's two commands (see README.md):
#   make        check the course with its reference solutions, write the report and the pages
#   make test   run the test suite (which also checks every chapter in both modes)
SWIFT ?= swift
BIN = .build/debug

.PHONY: course learn test build deps bench bench-sim bench-races clean

course: build
	$(BIN)/workbook check chapters --solutions solutions

# A learner's progress: grades the exercises as the chapters stand.
learn: build
	$(BIN)/workbook check chapters

test: build
	$(SWIFT) test --disable-swift-testing

# `swift build` (not only `swift test`) so the shared library chapter programs link against
# (libKernelSim.so: the simulator and the block runtime) exists.
build: deps
	$(SWIFT) build

deps:
	@scripts/install-deps.sh

bench: build
	scripts/benchmark.py

# What race detection's instrumentation costs a cold check of a chapter (with and without, one run).
bench-races: build
	scripts/instrumentation-cost.py

# Simulator throughput: thread switches/s and schedules explored/s (release build).
bench-sim: deps
	$(SWIFT) run -c release KernelSimBenchmark

clean:
	rm -rf build .build
